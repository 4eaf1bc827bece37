"""Instructions per request of each in-process stack, counted by valgrind (callgrind).

    python -m bench.instructions [--requests 1000] [--variants "obs default,flask (bare)"]

Wall-clock figures on a shared VM move by tens of percent from one run to the next; the number
of instructions a request executes does not. Each variant runs in two interpreters under
callgrind, one serving no measured request and one serving ``--requests``; the difference,
divided by the count, is the instructions of one request, start-up excluded. The requests are
those of the wsgi and asgi sections (same apps, same environ/scope, access lines to /dev/null).
Instructions are not time: code that runs cold (Flask's large per-request path evicts obs's
from the caches) costs more per instruction, which only the timed sections show.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.apps import ASGI_VARIANTS, WSGI_VARIANTS
from bench.common import missing

_COLLECTED = re.compile(r"Collected : (\d+)")
_WARM_UP = 200


def serve(kind: str, variant: str, requests: int) -> None:
    """Build *variant*, warm it up, then serve *requests* requests (the child's job)."""
    if kind == "wsgi":
        from bench.wsgi_inprocess import wsgi_batch

        batch = wsgi_batch(WSGI_VARIANTS[variant][0]())
    else:
        from bench.asgi_inprocess import SCOPE, asgi_batch

        batch = asgi_batch(ASGI_VARIANTS[variant][0](1), asyncio.new_event_loop(), SCOPE)
    batch(_WARM_UP)
    batch(requests)


def instructions(kind: str, variant: str, requests: int) -> int:
    """Instructions the whole child executes, under callgrind."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions", "--serve", kind, variant, str(requests)],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {variant}: {proc.stderr[-2000:]}")
    return int(found[1])


def per_request(kind: str, variant: str, requests: int) -> int:
    with ThreadPoolExecutor(2) as pool:  # one valgrind per core
        base, loaded = pool.map(lambda n: instructions(kind, variant, n), (0, requests))
    return round((loaded - base) / requests)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--variants", help="comma-separated names (default: all installed)")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)  # KIND VARIANT N
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("Error: valgrind is not installed; run: sudo apt-get install -y valgrind")
    groups: dict[str, tuple[str, dict[str, tuple[Any, str | None, str]]]] = {
        "WSGI (Flask)": ("wsgi", WSGI_VARIANTS),
        "ASGI (Starlette, one route)": ("asgi", ASGI_VARIANTS),
    }
    wanted = None if not args.variants else {v.strip() for v in args.variants.split(",")}
    for title, (kind, variants) in groups.items():
        counts: dict[str, int] = {}
        chosen = set(variants) if wanted is None else wanted & set(variants)
        chosen |= {variants[name][1] for name in chosen} - {None}  # with their baselines
        if not chosen:
            continue
        print(f"{title}: instructions per request ({args.requests} requests, callgrind)")
        for name, (_, baseline, module) in variants.items():
            if name not in chosen:
                continue
            reason = missing(module)
            if reason is not None:
                print(f"  {name:40} not measured: {reason}")
                continue
            counts[name] = per_request(kind, name, args.requests)
            extra = ""
            if baseline is not None and baseline in counts:
                added = counts[name] - counts[baseline]
                extra = f"  +{added:,} over {baseline} (+{100 * added / counts[baseline]:.0f} %)"
            print(f"  {name:40} {counts[name]:>9,}{extra}", flush=True)


if __name__ == "__main__":
    main()
