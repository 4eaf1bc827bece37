"""Section 3: requests per second through real servers on 127.0.0.1, each stack as people run it.

Users run uvicorn with its access log on (its default) and gunicorn with ``--access-logfile -``,
and put a peer exporter beside that log; obs writes its own access line, so it runs with the
server's log off. The rows of each server group:

- the bare framework with the server's access log on: the reference every ratio divides by;
- each peer beside that access log (a peer that writes its own access line, structlog behind
  asgi-correlation-id, runs with the server's log off, as obs does);
- obs default with the server's access log off;
- the bare framework without any log: the floor, what no log at all would cost.

Every server's stdout goes to a pipe read by another process (``wc -l``, as a container
runtime reads it), not to a file or /dev/null; the line count checks afterwards that the
stacks meant to log did write about one line per request and the floor none.

All servers of a group are started once and kept up; rounds are interleaved (every stack once
per round, the order rotated), and each stack's requests per second is divided by the
reference's of the same round. A ratio is the median of those per-round ratios with a 95 %
confidence interval (order statistics, as in the profiling bench): on this VM a server moves
by ±20 % between rounds minutes apart, so a median without an interval cannot tell a 5 %
difference. The load comes from ``wrk`` when installed, else :mod:`bench.loadgen`; all traffic
stays on the loopback address.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.apps import LOG_TO_STDOUT, MEASURED_PATH
from bench.common import median_ci, missing, section_main, summary

HOST = "127.0.0.1"
CONNECTIONS = 32


@dataclass(frozen=True)
class Stack:
    """One row: a server command line around one app."""

    server: str  # "uvicorn" or "gunicorn"
    target: str  # the app factory, as the server takes it
    module: str  # must import, else the row is skipped
    access_log: bool  # the server's own access log
    logs: bool  # writes about one stdout line per request (server's or the app's)
    options: tuple[str, ...] = ()  # workers, worker class
    env: dict[str, str] = field(default_factory=dict)


REFERENCE = "bare + server access log"
FLOOR = "bare, no log"


def _uvicorn(target: str, module: str, access_log: bool, logs: bool) -> Stack:
    return Stack("uvicorn", target, module, access_log, logs)


def _gunicorn_group(options: tuple[str, ...], multiprocess: bool) -> dict[str, Stack]:
    """The WSGI rows for one gunicorn set-up (worker class, workers)."""
    # Several workers share metrics through files, as each project documents: obs's gunicorn
    # config (which also sets PROMETHEUS_MULTIPROC_DIR), prometheus-flask-exporter's variable.
    obs_options = ("-c", "python:obs.gunicorn", *options) if multiprocess else options
    exporter_env = {"PROMETHEUS_MULTIPROC_DIR": "{tmp}"} if multiprocess else {}
    return {
        REFERENCE: Stack("gunicorn", "bench.apps:bare_flask()", "flask", True, True, options),
        "prometheus-flask-exporter + server access log": Stack(
            "gunicorn",
            "bench.apps:flask_exporter()",
            "prometheus_flask_exporter",
            True,
            True,
            options,
            exporter_env,
        ),
        "obs default (server log off)": Stack(
            "gunicorn", "bench.apps:obs_flask()", "obs.wsgi", False, True, obs_options
        ),
        FLOOR: Stack("gunicorn", "bench.apps:bare_flask()", "flask", False, False, options),
    }


#: group title -> row name -> stack; the first row of each group is its reference.
GROUPS: dict[str, dict[str, Stack]] = {
    "uvicorn, 1 worker (Starlette)": {
        REFERENCE: _uvicorn("bench.apps:bare_starlette_app", "starlette", True, True),
        "starlette-exporter + server access log": _uvicorn(
            "bench.apps:starlette_exporter_app", "starlette_exporter", True, True
        ),
        # structlog writes this stack's access line, so, like obs, it runs without uvicorn's.
        "starlette-exporter + asgi-correlation-id + structlog (server log off)": _uvicorn(
            "bench.apps:exporter_and_correlation_id_app", "asgi_correlation_id", False, True
        ),
        "obs default (server log off)": _uvicorn("bench.apps:obs_default_app", "obs", False, True),
        FLOOR: _uvicorn("bench.apps:bare_starlette_app", "starlette", False, False),
    },
    "gunicorn, 1 sync worker (Flask)": _gunicorn_group(("-w", "1"), multiprocess=False),
    "gunicorn, 1 gthread worker, 4 threads (Flask)": _gunicorn_group(
        ("-w", "1", "-k", "gthread", "--threads", "4"), multiprocess=False
    ),
    "gunicorn, 2 sync workers (Flask)": _gunicorn_group(("-w", "2"), multiprocess=True),
}
PEER_PREFIXES = ("starlette-exporter", "prometheus-flask-exporter")


def free_port() -> int:
    """A free TCP port on the loopback address."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def command(stack: Stack, port: int) -> list[str]:
    """The server's command line: its defaults, plus or minus its access log."""
    if stack.server == "uvicorn":
        out = [sys.executable, "-m", "uvicorn", "--factory", stack.target, "--host", HOST,
               "--port", str(port)]  # fmt: skip
        return out if stack.access_log else [*out, "--no-access-log"]
    out = [sys.executable, "-m", "gunicorn", "-b", f"{HOST}:{port}", *stack.options]
    if stack.access_log:
        out += ["--access-logfile", "-"]
    return [*out, stack.target]


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


@dataclass
class Served:
    """A running server whose stdout a ``wc -l`` process reads."""

    port: int
    server: subprocess.Popen[bytes]
    reader: subprocess.Popen[bytes]
    requests: int = 0

    def stop(self) -> int:
        """Stop the server; the lines it wrote to stdout."""
        self.server.terminate()
        try:
            self.server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        out, _ = self.reader.communicate(timeout=15)
        return int(out.split()[0])


@contextmanager
def serving(stack: Stack, tmp: str) -> Iterator[Served]:
    """Start *stack* on a free port with stdout to a pipe read by another process."""
    port = free_port()
    env = {**os.environ, LOG_TO_STDOUT: "1", "OBS_SERVICE_NAME": "bench"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    for name, value in stack.env.items():
        env[name] = value.format(tmp=tempfile.mkdtemp(dir=tmp))
    with open(os.path.join(tmp, f"stderr-{port}.txt"), "wb") as stderr:
        server = subprocess.Popen(
            command(stack, port), env=env, stdout=subprocess.PIPE, stderr=stderr, cwd=tmp
        )
    assert server.stdout is not None
    reader = subprocess.Popen(["wc", "-l"], stdin=server.stdout, stdout=subprocess.PIPE)
    server.stdout.close()  # only the reader holds the pipe's read end
    served = Served(port, server, reader)
    try:
        try:
            wait_ready(port)
        except RuntimeError as exc:
            server.kill()
            with open(os.path.join(tmp, f"stderr-{port}.txt")) as file:
                errors = file.read()[-2000:]
            raise RuntimeError(f"{' '.join(command(stack, port))}: {exc}\n{errors}") from exc
        yield served
    finally:
        if served.server.poll() is None or served.reader.poll() is None:
            served.stop()


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


def _ratio(values: list[float]) -> dict[str, float]:
    median, low, high = median_ci(values)
    return {"median": round(median, 3), "low": round(low, 3), "high": round(high, 3)}


def measure_group(
    stacks: dict[str, Stack], seconds: float, rounds: int, load: Any, skipped: dict[str, str]
) -> dict[str, Any]:
    """Interleaved rounds over the servers of one group; per-round ratios to the reference."""
    runnable = {}
    for name, stack in stacks.items():
        reason = missing(stack.module) or missing(stack.server)
        if reason is not None:
            skipped[name] = reason
        else:
            runnable[name] = stack
    if REFERENCE not in runnable:
        return {}
    per_round: dict[str, list[dict[str, float]]] = {name: [] for name in runnable}
    lines: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, ExitStack() as servers:
        running = {name: servers.enter_context(serving(s, tmp)) for name, s in runnable.items()}
        for served in running.values():
            served.requests += int(load(served.port, min(seconds, 1.0))["requests"])  # warm-up
        names = list(runnable)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                row = load(running[name].port, seconds)
                running[name].requests += int(row["requests"])
                per_round[name].append(row)
        for name, served in running.items():
            lines[name] = served.stop()
    out: dict[str, Any] = {}
    for name, rows in per_round.items():
        requests = running[name].requests
        # wrk counts the responses it read before stopping; a few more may have been served.
        if runnable[name].logs and not requests * 0.95 <= lines[name] <= requests * 1.05 + 100:
            raise RuntimeError(f"{name}: {lines[name]} stdout lines for {requests} requests")
        if not runnable[name].logs and lines[name] > 100:
            raise RuntimeError(f"{name} should not log, wrote {lines[name]} stdout lines")
        reference = [x["rps"] for x in per_round[REFERENCE]]
        out[name] = {
            "rps": summary([x["rps"] for x in rows], 1),
            "p99_ms": summary([x["p99_ms"] for x in rows], 3),
            "ratio": _ratio([x["rps"] / ref for x, ref in zip(rows, reference, strict=True)]),
            "stdout_lines_per_request": round(lines[name] / requests, 3),
            "command": " ".join(command(runnable[name], 0)[1:]).replace(sys.executable, "python"),
        }
    return out


def run(quick: bool) -> dict[str, Any]:
    # 2.5 s runs: the whole of `make bench` stays under 20 minutes on 2 cores (issue 21).
    seconds, rounds = (1.0, 2) if quick else (2.5, 7)
    generator, load = load_generator()
    skipped: dict[str, str] = {}
    groups = {
        title: measure_group(stacks, seconds, rounds, load, skipped)
        for title, stacks in GROUPS.items()
    }
    return {
        "seconds": seconds,
        "rounds": rounds,
        "connections": CONNECTIONS,
        "generator": generator,
        "reference": REFERENCE,
        "groups": groups,
        "skipped": skipped,
    }


if __name__ == "__main__":
    section_main(run)
