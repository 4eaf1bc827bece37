"""What profiling costs: a served app sampled by ``obs profile``, and an unprofiled request.

Run from the repository root: ``python -m bench.bench_profiling`` (``--help`` for the knobs).

(a) Requests per second of a small app served by uvicorn, with and without ``obs profile``
    sampling it at the default 100 Hz; rounds alternate, each sampled round is compared with the
    plain round before it, and the median of those costs is reported with its quartiles (on a
    shared machine the spread says how far to trust it). Target: under 2% fewer requests/s.
    obs profile reads stacks without pausing the process by default (py-spy --nonblocking);
    ``--profile-args=--blocking`` measures the mode that pauses it for every sample.
(b) Nanoseconds per request spent by profiling when it is enabled (a token is configured) but
    the request does not ask for a profile: the ``enabled`` check plus ``start(None, rid)``.
    Target: under 1 µs.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"status": "ok"}'


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The served app: a little CPU work per request, like rendering a small page."""
    if scope["type"] != "http":
        return
    total = 0
    for i in range(2000):
        total += i * i
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the app did not start serving on port {port} within {timeout:.0f}s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process *pid* so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, requests: int, connections: int) -> float:
    """Requests per second of *requests* GETs over *connections* keep-alive connections: with
    wrk when installed (a second of load per 4,000 requests, about), else from Python threads."""
    if shutil.which("wrk"):
        seconds = max(requests // 4000, 1)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if found is None or "Non-2xx" in out or "Socket errors" in out:
            raise SystemExit(f"wrk failed against the app:\n{out}")
        return float(found.group(1))
    per_connection = requests // connections
    errors: list[BaseException] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(per_connection):
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"load generator failed: {errors[0]!r}")
    return per_connection * connections / elapsed


def start_profile(pid: int, directory: str, extra: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "obs.cli", "profile", str(pid), "--duration", "600",
         "--format", "collapsed", "--output", os.path.join(directory, "bench.collapsed.txt"),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches and starts sampling
    if proc.poll() is not None:
        raise SystemExit(f"obs profile failed: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def stop_profile(proc: subprocess.Popen[str]) -> int:
    """Stop sampling (as Ctrl-C would) and return how many samples were taken."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"obs profile failed: {err.strip()}")
    first = out.split("samples over", 1)[0].splitlines()[-1].strip()
    return int(first) if first.isdigit() else -1


def bench_served(
    requests: int, connections: int, rounds: int, extra: list[str]
) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_profiling:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    plain: list[float] = []
    sampled: list[float] = []
    samples: list[int] = []
    plain_cpu: list[float] = []
    sampled_cpu: list[float] = []
    try:
        wait_until_serving(port)
        load(port, requests // 4, connections)  # warm up
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(rounds):
                cpu = cpu_seconds(server.pid)
                plain.append(load(port, requests, connections))
                plain_cpu.append((cpu_seconds(server.pid) - cpu) / requests)
                profile = start_profile(server.pid, tmp, extra)
                try:
                    cpu = cpu_seconds(server.pid)
                    sampled.append(load(port, requests, connections))
                    sampled_cpu.append((cpu_seconds(server.pid) - cpu) / requests)
                finally:
                    samples.append(stop_profile(profile))
    finally:
        server.terminate()
        server.wait(timeout=10)
    base, with_profile = statistics.median(plain), statistics.median(sampled)
    # Each sampled round against the plain round just before it, so slow drift cancels out.
    costs = sorted(100.0 * (p - s) / p for p, s in zip(plain, sampled, strict=True))
    return {
        "plain": base,
        "sampled": with_profile,
        "cost_percent": statistics.median(costs),
        "cost_low": costs[len(costs) // 4],
        "cost_high": costs[(3 * len(costs)) // 4],
        "samples": float(statistics.median(samples)),
        "plain_cpu_us": 1e6 * statistics.median(plain_cpu),
        "sampled_cpu_us": 1e6 * statistics.median(sampled_cpu),
    }


def bench_unprofiled_request(number: int) -> dict[str, float]:
    from obs.profiling import RequestProfiler

    with tempfile.TemporaryDirectory() as tmp:
        profiler = RequestProfiler("bench-token", tmp)

        def per_request() -> None:
            # What the middleware does for a request without the X-Obs-Profile header.
            if profiler.enabled:
                profiler.start(None, "req-1")

        def wrong_token() -> None:
            if profiler.enabled:
                profiler.start("not-the-token", "req-1")

        def enabled_check() -> None:
            if profiler.enabled:
                pass

        def empty() -> None:
            pass

        def ns(fn: Callable[[], None]) -> float:
            best = min(timeit.repeat(fn, number=number, repeat=5))
            return 1e9 * best / number

        baseline = ns(empty)
        return {
            "enabled_check": ns(enabled_check) - baseline,
            "start_none": ns(per_request) - baseline,
            "start_wrong": ns(wrong_token) - baseline,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=16000, help="requests per round (wrk: 1 s per 4,000)"
    )
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=21, help="alternating rounds")
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing")
    parser.add_argument(
        "--profile-args", default="", help="extra obs profile options, e.g. '--blocking'"
    )
    args = parser.parse_args(argv)

    extra = args.profile_args.split()
    served = bench_served(args.requests, args.connections, args.rounds, extra)
    per_request = bench_unprofiled_request(args.number)
    rows = [
        ("served app, req/s without obs profile", f"{served['plain']:,.0f}", ""),
        ("served app, req/s while sampled at 100 Hz", f"{served['sampled']:,.0f}",
         f"{served['samples']:.0f} samples per round"),
        ("throughput cost of sampling (median of pairs)", f"{served['cost_percent']:.2f} %",
         f"target < 2 %; quartiles {served['cost_low']:.1f} .. {served['cost_high']:.1f} %"),
        ("server CPU per request without / while sampled",
         f"{served['plain_cpu_us']:.0f} / {served['sampled_cpu_us']:.0f} µs", ""),
        ("profiler.enabled check", f"{per_request['enabled_check']:.0f} ns", ""),
        ("enabled + start(None, rid), no header", f"{per_request['start_none']:.0f} ns",
         "target < 1000 ns"),
        ("enabled + start(wrong token, rid)", f"{per_request['start_wrong']:.0f} ns", ""),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    print(f"{'-' * width}  {'-' * 12}  ----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    print(
        f"({args.rounds} alternating rounds of {args.requests} requests over "
        f"{args.connections} connections from {'wrk' if shutil.which('wrk') else 'Python'}, "
        f"medians; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"obs profile options: {' '.join(extra) or 'defaults'})"
    )


if __name__ == "__main__":
    main()
