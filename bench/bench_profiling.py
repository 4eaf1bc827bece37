"""What profiling costs: a served app sampled by ``obs profile``, and an unprofiled request.

Run from the repository root: ``python -m bench.bench_profiling`` (``--help`` for the knobs).

(a) Requests per second of a small app served by uvicorn (load from wrk when installed), with
    and without ``obs profile`` sampling it at the default 100 Hz. Plain and sampled rounds
    alternate; each sampled round is compared with the mean of the plain rounds on either side,
    and the median of those costs is reported with a 95 % confidence interval: on a small shared
    VM consecutive plain rounds differ by several percent, so it takes tens of rounds to resolve
    a cost of one or two. Target: under 2% fewer requests/s. On a 2-core machine the load
    generator, the server and py-spy share the cores, so py-spy's own CPU is part of the cost.
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
#: Pause before each round: obs profile starts py-spy in it, and plain rounds get the same.
SETTLE_SECONDS = 1.0


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


def load(port: int, seconds: float, connections: int) -> tuple[float, int]:
    """Requests per second and requests answered during *seconds* of GETs over *connections*
    keep-alive connections: with wrk when installed, else from Python threads."""
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        if rps is None or total is None or "Non-2xx" in out or "Socket errors" in out:
            raise SystemExit(f"wrk failed against the app:\n{out}")
        return float(rps.group(1)), int(total.group(1))
    counts: list[int] = []
    errors: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        done = 0
        try:
            while time.perf_counter() < deadline:
                conn.request("GET", "/")
                conn.getresponse().read()
                done += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()
            counts.append(done)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"load generator failed: {errors[0]!r}")
    return sum(counts) / elapsed, sum(counts)


def start_profile(pid: int, directory: str, extra: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "obs.cli", "profile", str(pid), "--duration", "600",
         "--format", "collapsed", "--output", os.path.join(directory, "bench.collapsed.txt"),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(SETTLE_SECONDS)  # py-spy attaches and starts sampling
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


def _median_ci(values: list[float]) -> tuple[float, float, float]:
    """The median of *values* and a 95 % confidence interval for it (order statistics)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * n**0.5  # 1.96 * sqrt(n) / 2
    low, high = max(int(n / 2 - half), 0), min(int(n / 2 + half + 1), n - 1)
    return statistics.median(ordered), ordered[low], ordered[high]


def bench_served(
    seconds: float, connections: int, rounds: int, extra: list[str]
) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_profiling:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def measured() -> tuple[float, float]:
        cpu = cpu_seconds(server.pid)
        rps, answered = load(port, seconds, connections)
        return rps, (cpu_seconds(server.pid) - cpu) / max(answered, 1)

    plain: list[tuple[float, float]] = []
    sampled: list[tuple[float, float]] = []
    samples: list[int] = []
    try:
        wait_until_serving(port)
        load(port, 1.0, connections)  # warm up
        with tempfile.TemporaryDirectory() as tmp:
            time.sleep(SETTLE_SECONDS)
            plain.append(measured())
            for _ in range(rounds):
                profile = start_profile(server.pid, tmp, extra)  # settles as long as below
                try:
                    sampled.append(measured())
                finally:
                    samples.append(stop_profile(profile))
                time.sleep(SETTLE_SECONDS)  # plain rounds start after the same pause
                plain.append(measured())
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Each sampled round against the mean of the plain rounds on either side of it, so that
    # the machine's drift from one round to the next cancels out as far as it can.
    costs = [
        100.0 * (1.0 - s / ((before + after) / 2))
        for (s, _), (before, _), (after, _) in zip(sampled, plain, plain[1:], strict=False)
    ]
    cost, low, high = _median_ci(costs)
    return {
        "plain": statistics.median(p for p, _ in plain),
        "sampled": statistics.median(s for s, _ in sampled),
        "cost_percent": cost,
        "cost_low": low,
        "cost_high": high,
        "samples": float(statistics.median(samples)),
        "plain_cpu_us": 1e6 * statistics.median(c for _, c in plain),
        "sampled_cpu_us": 1e6 * statistics.median(c for _, c in sampled),
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
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of load per round")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=41, help="sampled rounds")
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing")
    parser.add_argument(
        "--profile-args", default="", help="extra obs profile options, e.g. '--blocking'"
    )
    args = parser.parse_args(argv)

    extra = args.profile_args.split()
    served = bench_served(args.seconds, args.connections, args.rounds, extra)
    per_request = bench_unprofiled_request(args.number)
    rows = [
        ("served app, req/s without obs profile", f"{served['plain']:,.0f}", ""),
        ("served app, req/s while sampled at 100 Hz", f"{served['sampled']:,.0f}",
         f"{served['samples']:.0f} samples per round"),
        ("throughput cost of sampling (median of pairs)", f"{served['cost_percent']:.2f} %",
         f"target < 2 %; 95 % CI {served['cost_low']:.1f} .. {served['cost_high']:.1f} %"),
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
        f"({args.rounds} sampled rounds of {args.seconds:g} s, each between two plain ones, over "
        f"{args.connections} connections from {'wrk' if shutil.which('wrk') else 'Python'}, "
        f"medians; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"obs profile options: {' '.join(extra) or 'defaults'})"
    )


if __name__ == "__main__":
    main()
