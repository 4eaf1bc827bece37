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
    ``--profile-args=--blocking`` measures the mode that pauses it for every sample. Also
    reported: the CPU that obs profile and its py-spy processes use while the load runs, and the
    CPU per request with that share included, which is what sampling costs a machine with no
    idle CPU at all.
(b) Nanoseconds per request spent by profiling when it is enabled (a token is configured) but
    the request does not ask for a profile: the ``enabled`` check plus ``start(None, rid)``.
    Target: under 1 µs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median_ci
from bench.http_load import free_port, load_generator, wait_ready
from obs.profiling.tree import descendants

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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process *pid* so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def profiler_cpu_seconds(proc: subprocess.Popen[str]) -> float:
    """CPU time so far of obs profile and of the py-spy processes it runs."""
    total = 0.0
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            total += cpu_seconds(pid)
        except OSError:  # ended meanwhile
            pass
    return total


def stop_profile(proc: subprocess.Popen[str]) -> int:
    """Stop sampling (as Ctrl-C would) and return how many samples were taken."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"obs profile failed: {err.strip()}")
    first = out.split("samples over", 1)[0].splitlines()[-1].strip()
    return int(first) if first.isdigit() else -1


def bench_served(
    seconds: float, connections: int, rounds: int, extra: list[str]
) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_profiling:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    _, load = load_generator()

    def measured() -> tuple[float, float]:
        cpu = cpu_seconds(server.pid)
        result = load(port, seconds, connections=connections, path="/")
        return result["rps"], (cpu_seconds(server.pid) - cpu) / max(result["requests"], 1)

    plain: list[tuple[float, float]] = []
    sampled: list[tuple[float, float]] = []
    samples: list[int] = []
    profiler_cpu: list[float] = []  # % of one core, steady state
    try:
        wait_ready(port, path="/")
        load(port, 1.0, connections=connections, path="/")  # warm up
        with tempfile.TemporaryDirectory() as tmp:
            time.sleep(SETTLE_SECONDS)
            plain.append(measured())
            for _ in range(rounds):
                profile = start_profile(server.pid, tmp, extra)  # settles as long as below
                try:
                    cpu, started = profiler_cpu_seconds(profile), time.monotonic()
                    sampled.append(measured())
                    cpu = profiler_cpu_seconds(profile) - cpu
                    profiler_cpu.append(100.0 * cpu / (time.monotonic() - started))
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
    cost, low, high = median_ci(costs)
    return {
        "plain": statistics.median(p for p, _ in plain),
        "sampled": statistics.median(s for s, _ in sampled),
        "cost_percent": cost,
        "cost_low": low,
        "cost_high": high,
        "samples": float(statistics.median(samples)),
        "profiler_cpu_percent": statistics.median(profiler_cpu),
        "plain_cpu_us": 1e6 * statistics.median(c for _, c in plain),
        "sampled_cpu_us": 1e6 * statistics.median(c for _, c in sampled),
    }


def bench_unprofiled_request(number: int) -> dict[str, float]:
    from obs.profiling import RequestProfiler

    with tempfile.TemporaryDirectory() as tmp:
        profiler = RequestProfiler("bench-token-0123456789", tmp)  # 16 characters at least

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
    # obs profile stops on SIGINT; started from a shell's background job this process would
    # ignore SIGINT and pass that on, and no round would ever stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    served = bench_served(args.seconds, args.connections, args.rounds, extra)
    per_request = bench_unprofiled_request(args.number)
    rows = [
        ("served app, req/s without obs profile", f"{served['plain']:,.0f}", ""),
        ("served app, req/s while sampled at 100 Hz", f"{served['sampled']:,.0f}",
         f"{served['samples']:.0f} samples per round"),
        ("throughput cost of sampling (median of pairs)", f"{served['cost_percent']:.2f} %",
         f"target < 2 %; 95 % CI {served['cost_low']:.1f} .. {served['cost_high']:.1f} %"),
        ("CPU of obs profile and py-spy while sampling", f"{served['profiler_cpu_percent']:.1f} %",
         "of one core, during the measured load"),
        ("server CPU per request without / while sampled",
         f"{served['plain_cpu_us']:.0f} / {served['sampled_cpu_us']:.0f} µs", ""),
        ("profiler.enabled check", f"{per_request['enabled_check']:.0f} ns", ""),
        ("enabled + start(None, rid), no header", f"{per_request['start_none']:.0f} ns",
         "target < 1000 ns"),
        ("enabled + start(wrong token, rid)", f"{per_request['start_wrong']:.0f} ns", ""),
    ]  # fmt: skip
    # On a saturated machine every CPU second the profiler takes is one the server loses: the
    # CPU per request, the profiler's share included, says what sampling costs there.
    profiler_us = 1e4 * served["profiler_cpu_percent"] / served["sampled"]
    cpu_cost = 100.0 * ((served["sampled_cpu_us"] + profiler_us) / served["plain_cpu_us"] - 1)
    rows.insert(5, ("CPU per request, the profiler's share included",
                    f"{cpu_cost:+.2f} %", f"{profiler_us:.0f} µs of profiler CPU per request"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    print(f"{'-' * width}  {'-' * 12}  ----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    print(
        f"({args.rounds} sampled rounds of {args.seconds:g} s, each between two plain ones, over "
        f"{args.connections} connections from {load_generator()[0]}, "
        f"medians; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"obs profile options: {' '.join(extra) or 'defaults'})"
    )


if __name__ == "__main__":
    main()
