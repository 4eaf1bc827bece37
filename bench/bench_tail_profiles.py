"""What always-on slow-request profiles cost: throughput, sampler CPU, instructions, memory.

Run from the repository root: ``python -m bench.bench_tail_profiles`` (``--help`` for the knobs).

(a) Requests per second of obs's default Starlette app served by uvicorn (load from wrk when
    installed), two servers side by side: ``OBS_SLOW_PROFILES`` off and on at the default rate.
    Rounds alternate off / on as in ``bench.bench_profiling``: each "on" round is compared with
    the mean of the "off" rounds either side of it; the median of those costs is reported with a
    95 % confidence interval. Also the sampler thread's own CPU (read inside the server with
    ``pthread_getcpuclockid``) as a share of one core, and server CPU per request off / on.
(b) Instructions per request with the profiles on and off, in process, counted by callgrind as
    ``bench.instructions`` does (``--instructions`` to run it; it takes a few minutes).
(c) Resident memory after 100,000 requests with the sampler on (``bench.memory``'s requests),
    once with the default threshold and once with a threshold so low that every sampled request
    is kept, so that retention and the per-minute cap are exercised too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.bench_profiling import _median_ci, cpu_seconds
from bench.http_load import free_port, load_generator, wait_ready

ROOT = Path(__file__).resolve().parent.parent
SETTLE_SECONDS = 0.5
_COLLECTED = re.compile(r"Collected : (\d+)")


def _build_app() -> Any:
    from bench.apps import obs_default

    return obs_default(1)


def _sampler_cpu() -> float:
    for thread in threading.enumerate():
        if thread.name == "obs-slow-profiler" and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


_inner: Any = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The served app: obs default on one Starlette route; ``/_sampler`` tells the sampler CPU."""
    global _inner
    if scope["type"] == "lifespan":
        return
    if scope["path"] == "/_sampler":
        body = f"{_sampler_cpu():.6f}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if _inner is None:
        _inner = _build_app()
    await _inner(scope, receive, send)


def _server(port: int, on: bool, profile_dir: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OBS_SLOW_PROFILES": "1" if on else "0", "OBS_PROFILE_DIR": profile_dir}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_tail_profiles:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _sampler_seconds(port: int) -> float:
    import httpx

    return float(httpx.get(f"http://127.0.0.1:{port}/_sampler", timeout=5).text)


def bench_served(seconds: float, connections: int, rounds: int) -> dict[str, float]:
    _, load = load_generator()
    path = "/users/1"
    with tempfile.TemporaryDirectory() as tmp:
        ports = {False: free_port(), True: free_port()}
        servers = {on: _server(port, on, tmp) for on, port in ports.items()}
        try:
            for port in ports.values():
                wait_ready(port, path=path)
                load(port, 1.0, connections=connections, path=path)  # warm up

            def measured(on: bool) -> tuple[float, float, float]:
                port, pid = ports[on], servers[on].pid
                cpu, sampler = cpu_seconds(pid), _sampler_seconds(port)
                started = time.monotonic()
                result = load(port, seconds, connections=connections, path=path)
                elapsed = time.monotonic() - started
                per_request = (cpu_seconds(pid) - cpu) / max(result["requests"], 1)
                share = 100.0 * (_sampler_seconds(port) - sampler) / elapsed
                return result["rps"], per_request, share

            off: list[tuple[float, float, float]] = [measured(False)]
            on: list[tuple[float, float, float]] = []
            for _ in range(rounds):
                time.sleep(SETTLE_SECONDS)
                on.append(measured(True))
                time.sleep(SETTLE_SECONDS)
                off.append(measured(False))
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=10)
    costs = [
        100.0 * (1.0 - s / ((before + after) / 2))
        for (s, _, _), (before, _, _), (after, _, _) in zip(on, off, off[1:], strict=False)
    ]
    cost, low, high = _median_ci(costs)
    return {
        "off": statistics.median(r for r, _, _ in off),
        "on": statistics.median(r for r, _, _ in on),
        "cost_percent": cost,
        "cost_low": low,
        "cost_high": high,
        "sampler_cpu_percent": statistics.median(s for _, _, s in on),
        "off_cpu_us": 1e6 * statistics.median(c for _, c, _ in off),
        "on_cpu_us": 1e6 * statistics.median(c for _, c, _ in on),
    }


def bench_begin_finish(number: int) -> dict[str, float]:
    """Nanoseconds of ``begin()`` + ``finish()`` of a fast request, in a task and on a thread."""
    import timeit

    from obs.profiling.slow import SlowRequestProfiler

    with tempfile.TemporaryDirectory() as tmp:
        profiler = SlowRequestProfiler(tmp)

        def one() -> None:
            samples = profiler.begin()
            if samples is not None:
                samples.finish(0.001, "/r", "rid")

        def ns() -> float:
            return 1e9 * min(timeit.repeat(one, number=number, repeat=5)) / number

        async def in_task() -> float:
            return ns()

        try:
            return {"task": asyncio.run(in_task()), "thread": ns()}
        finally:
            profiler.close()


def serve_inprocess(on: bool, requests: int) -> None:
    """Serve *requests* in process (the callgrind child's job)."""
    from bench.asgi_inprocess import SCOPE, asgi_batch

    os.environ["OBS_SLOW_PROFILES"] = "1" if on else "0"
    os.environ["OBS_PROFILE_DIR"] = tempfile.mkdtemp()
    batch = asgi_batch(_build_app(), asyncio.new_event_loop(), SCOPE)
    batch(200)
    batch(requests)


def instructions_per_request(on: bool, requests: int) -> int:
    def run(n: int) -> int:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-m", "bench.bench_tail_profiles", "--serve", "1" if on else "0", str(n)],
            capture_output=True, text=True, check=False, timeout=900, cwd=ROOT,
        )  # fmt: skip
        found = _COLLECTED.search(proc.stderr)
        if proc.returncode != 0 or found is None:
            raise SystemExit(f"callgrind failed: {proc.stderr[-2000:]}")
        return int(found[1])

    with ThreadPoolExecutor(2) as pool:
        base, loaded = pool.map(run, (0, requests))
    return round((loaded - base) / requests)


def bench_memory(threshold: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OBS_SLOW_PROFILES": "1", "OBS_PROFILE_DIR": tmp,
               "OBS_SLOW_PROFILE_THRESHOLD": threshold}  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory"], env=env, cwd=ROOT, capture_output=True,
            text=True, check=True, timeout=900,
        )  # fmt: skip
        import json

        result: dict[str, Any] = json.loads(out.stdout)
        kept = [n for n in os.listdir(Path(tmp) / "slow")] if (Path(tmp) / "slow").is_dir() else []
        result["profiles_kept"] = sum(1 for n in kept if n.endswith(".svg"))
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of load per round")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=15, help="'on' rounds")
    parser.add_argument("--instructions", action="store_true", help="also count instructions")
    parser.add_argument("--memory", action="store_true", help="also run the memory section")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # ON N
    args = parser.parse_args(argv)
    if args.serve:
        serve_inprocess(args.serve[0] == "1", int(args.serve[1]))
        return
    from obs.config import Settings

    rate = Settings().slow_profile_rate
    served = bench_served(args.seconds, args.connections, args.rounds)
    rows = [
        ("served app, req/s, slow profiles off", f"{served['off']:,.0f}", ""),
        (f"served app, req/s, on at {rate} Hz", f"{served['on']:,.0f}", ""),
        ("throughput cost (median of pairs)", f"{served['cost_percent']:.2f} %",
         f"95 % CI {served['cost_low']:.1f} .. {served['cost_high']:.1f} %; on by default "
         "only if <= 1 %"),
        ("CPU of the sampler thread", f"{served['sampler_cpu_percent']:.2f} %",
         "of one core, during the load"),
        ("server CPU per request off / on",
         f"{served['off_cpu_us']:.0f} / {served['on_cpu_us']:.0f} µs", ""),
    ]  # fmt: skip
    overhead = bench_begin_finish(100_000)
    rows.append(("begin + finish of a fast request, task / thread",
                 f"{overhead['task']:,.0f} / {overhead['thread']:,.0f} ns", "in process"))  # fmt: skip
    if args.instructions:
        off, on = instructions_per_request(False, 1000), instructions_per_request(True, 1000)
        rows.append(("instructions per request off / on", f"{off:,} / {on:,}",
                     f"+{on - off:,} (callgrind, in process, 1000 requests)"))  # fmt: skip
    if args.memory:
        for threshold in ("1.0", "0.000001"):
            m = bench_memory(threshold)
            rows.append((f"RSS after {m['requests']:,} requests, threshold {threshold}s",
                         f"{m['rss_mb_after']} MB",
                         f"{m['growth_percent']:+.2f} % over warm-up; "
                         f"{m['profiles_kept']} profiles kept"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  note")
    print(f"{'-' * width}  {'-' * 14}  ----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    print(
        f"({args.rounds} 'on' rounds of {args.seconds:g} s, each between two 'off' ones, over "
        f"{args.connections} connections from {load_generator()[0]}, medians; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
