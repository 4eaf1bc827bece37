"""Section 3: requests per second and p99 latency through real servers on 127.0.0.1.

One uvicorn worker (ASGI) or one gunicorn sync worker (WSGI) per variant, started fresh, with
the load generator in another process: ``wrk`` when installed (``python -m bench`` installs
Debian's package when it runs as root), else :mod:`bench.loadgen`. Variants run in
interleaved rounds of a bounded duration; all traffic stays on the loopback address.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.apps import MEASURED_PATH
from bench.common import missing, section_main, summary

HOST = "127.0.0.1"
CONNECTIONS = 32

#: name -> (server, app factory, module that must import)
ASGI_SERVERS = {
    "starlette (bare)": ("uvicorn", "bench.apps:bare_starlette_app", "starlette"),
    "obs default": ("uvicorn", "bench.apps:obs_default_app", "obs"),
    "starlette-exporter": ("uvicorn", "bench.apps:starlette_exporter_app", "starlette_exporter"),
    "prometheus-fastapi-instrumentator": (
        "uvicorn",
        "bench.apps:fastapi_instrumentator_app",
        "prometheus_fastapi_instrumentator",
    ),
}
WSGI_SERVERS = {
    "flask (bare)": ("gunicorn", "bench.apps:bare_flask()", "flask"),
    "obs default": ("gunicorn", "bench.apps:obs_flask()", "obs.wsgi"),
    "prometheus-flask-exporter": (
        "gunicorn",
        "bench.apps:flask_exporter()",
        "prometheus_flask_exporter",
    ),
}


def free_port() -> int:
    """A free TCP port on the loopback address."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _command(server: str, target: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--factory", target, "--host", HOST,
            "--port", str(port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"{HOST}:{port}",
        "--log-level", "warning", target,
    ]  # fmt: skip


def wait_ready(port: int, timeout: float = 30.0, path: str = MEASURED_PATH) -> None:
    """Wait until the server on *port* answers ``GET path`` with a 200."""
    deadline = time.monotonic() + timeout
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(request.encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not answer 200 in {timeout} s")


@contextmanager
def serving(server: str, target: str) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "OBS_ACCESS_LOG": os.environ.get("OBS_ACCESS_LOG", "true")}
    proc = subprocess.Popen(
        _command(server, target, port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_ready(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _wrk(
    port: int, seconds: float, connections: int = CONNECTIONS, path: str = MEASURED_PATH
) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency",
         f"http://{HOST}:{port}{path}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed against port {port}:\n{out}")
    latencies = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        latencies[pct] = float(value) * _UNITS[unit]
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": latencies["50"],
        "p99_ms": latencies["99"],
    }


def _python_loadgen(
    port: int, seconds: float, connections: int = CONNECTIONS, path: str = MEASURED_PATH
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", HOST, str(port), path, str(seconds),
         str(connections)],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def load_generator() -> tuple[str, Callable[..., dict[str, float]]]:
    """The load generator to use and its name: wrk when installed, else :mod:`bench.loadgen`.

    Called as ``load(port, seconds, connections=..., path=...)``; returns ``rps``, ``requests``
    and the ``p50_ms``/``p99_ms`` latencies.
    """
    if shutil.which("wrk"):
        return "wrk", _wrk
    return "python (bench.loadgen)", _python_loadgen


def _measure(variants: dict[str, tuple[str, str, str]], seconds: float, rounds: int,
             load: Any, skipped: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    runnable = {}
    for name, (server, target, module) in variants.items():
        reason = missing(module) or missing(server)
        if reason is not None:
            skipped[name] = reason
        else:
            runnable[name] = (server, target)
    per_round: dict[str, list[dict[str, float]]] = {name: [] for name in runnable}
    names = list(runnable)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            with serving(*runnable[name]) as port:
                load(port, min(seconds, 1.0))  # warm-up
                per_round[name].append(load(port, seconds))
    return {
        name: {
            "rps": summary([x["rps"] for x in rows], 1),
            "p99_ms": summary([x["p99_ms"] for x in rows], 3),
        }
        for name, rows in per_round.items()
    }


def run(quick: bool) -> dict[str, Any]:
    seconds, rounds = (1.0, 1) if quick else (5.0, 3)
    generator, load = load_generator()
    skipped: dict[str, str] = {}
    return {
        "seconds": seconds,
        "rounds": rounds,
        "connections": CONNECTIONS,
        "generator": generator,
        "asgi (uvicorn, 1 worker)": _measure(ASGI_SERVERS, seconds, rounds, load, skipped),
        "wsgi (gunicorn, 1 sync worker)": _measure(WSGI_SERVERS, seconds, rounds, load, skipped),
        "skipped": skipped,
    }


if __name__ == "__main__":
    section_main(run)
