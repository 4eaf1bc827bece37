"""Instructions per request of each in-process stack, counted by valgrind (callgrind), and the
instruction budgets that ``make test`` holds obs to.

    python -m bench.instructions [--requests 1000] [--variants "obs default,flask (bare)"]
    python -m bench.instructions --check [--quick] [--budgets bench/budgets.json]
    python -m bench.instructions --write-budgets      # after a change that must add work

Wall-clock figures on a shared VM move by tens of percent from one run to the next; the number
of instructions a request executes does not. Each variant runs in its own interpreter under
callgrind with collection off; it is built, serves warm-up requests, and then serves the
counted requests inside ``sys.call_tracing`` (callgrind's ``--toggle-collect`` switches
collection on exactly while that C function runs, so start-up, imports and warm-up are not
counted, and one interpreter per variant is enough). The count divided by the requests is the
instructions of one request; a variant's *added* instructions are that minus its baseline's
(the bare framework). The requests are those of the wsgi and asgi sections (same apps, same
environ/scope, access lines to /dev/null). Instructions are not time: code that runs cold
(Flask's large per-request path evicts obs's from the caches) costs more per instruction,
which only the timed sections show.

Budgets (``bench/budgets.json``) hold, per Python version and variant, the added instructions
per request measured when the budget was set; ``--check`` fails when a variant exceeds its
budget by more than the file's tolerance (3 %), naming the variant, the budget and the count.
An issue that must add per-request work raises the budget in the same commit
(``--write-budgets``), with the reason in CHANGELOG.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.apps import ASGI_VARIANTS, WSGI_VARIANTS
from bench.common import missing

_ROOT = Path(__file__).resolve().parent.parent
BUDGETS = _ROOT / "bench" / "budgets.json"
_TOTALS = re.compile(r"^totals: (\d+)", re.M)
_WARM_UP = 100
_FIXED_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
#: Requests counted per variant after the warm-up. The count per request depends a little on
#: it (per-batch costs are divided by it), so budgets are measured and checked with this one.
REQUESTS = 200
#: Environment paddings (bytes): each variant is counted once per padding, in one interpreter
#: per padding, and the median kept (see :func:`_child_environment`).
LAYOUTS = (0, 40, 333)
#: The variants that have budgets: (kind, name in ASGI_VARIANTS / WSGI_VARIANTS).
BUDGETED = (
    ("asgi", "obs metrics-only"),
    ("asgi", "obs default"),
    ("wsgi", "obs metrics-only"),
    ("wsgi", "obs default"),
)
GROUPS: dict[str, tuple[str, dict[str, tuple[Any, str | None, str]]]] = {
    "wsgi": ("WSGI (Flask)", WSGI_VARIANTS),
    "asgi": ("ASGI (Starlette, one route)", ASGI_VARIANTS),
}


def key(kind: str, variant: str) -> str:
    """A variant's name in budgets.json and in the check's output: ``asgi obs default``."""
    return f"{kind} {variant}"


def python_version() -> str:
    return "{}.{}".format(*sys.version_info[:2])


def _burn(iterations: int) -> None:
    """Known extra work for a deliberately slowed variant (``--slow-down``)."""
    for _ in range(iterations):
        pass


def _slowed_asgi(app: Any, iterations: int) -> Any:
    async def slowed(scope: Any, receive: Any, send: Any) -> None:
        _burn(iterations)
        await app(scope, receive, send)

    return slowed


def _slowed_wsgi(app: Any, iterations: int) -> Any:
    def slowed(environ: Any, start_response: Any) -> Any:
        _burn(iterations)
        return app(environ, start_response)

    return slowed


def serve(variants: list[tuple[str, str]], requests: int, slow_down: dict[str, int]) -> None:
    """Build each of *variants* (kind, name), warm them up, then serve *requests* counted
    requests through each in turn, one ``sys.call_tracing`` (one callgrind dump) per variant
    (the child's job).

    Every app is built and warmed up before the first counted request, so that no variant's
    count includes another's first-use work. The garbage collector is off while the counted
    requests run: with it on, a collection falls into the counted region whenever the
    allocation counter happens to cross its threshold there, and where it crosses depends on
    everything allocated before. Measured on 2026-12-03 (1,000 requests, Python 3.11): with
    the collector on, bare Flask counted 2.9k more instructions per request (Flask leaves
    reference cycles behind), and obs default's added count moved between 91.6k and 91.9k
    from one identical run to the next depending on where collections fell; with it off, the
    same runs agreed within 20 instructions. What obs allocates per request is still counted;
    only the amortised cycle search is not.
    """
    # A fixed wall clock, installed before obs is imported (obs.processors binds time.time_ns
    # at import). Under valgrind a request runs ~50x slower than in production, so obs's
    # per-second timestamp cache refreshes every hundred-odd requests instead of every ten
    # thousand, and how often depends on the machine's load: with the real clock, two runs
    # minutes apart on a loaded VM (2026-12-03) counted 80,678 and 81,242 added instructions
    # for ASGI obs default, 93,156 and 94,630 for WSGI, while metrics-only (no timestamps)
    # agreed within 0.2 %. A regression that defeats the cache still shows: it would format
    # on every request, whatever the clock says.
    time.time_ns = itertools.repeat(_FIXED_NS).__next__
    time.time = itertools.repeat(_FIXED_NS / 1e9).__next__
    batches = []
    for kind, name in variants:
        if kind == "wsgi":
            from bench.wsgi_inprocess import wsgi_batch

            app = WSGI_VARIANTS[name][0]()
            if slow_down.get(key(kind, name)):
                app = _slowed_wsgi(app, slow_down[key(kind, name)])
            batch = wsgi_batch(app)
        else:
            from bench.asgi_inprocess import SCOPE, asgi_batch

            app = ASGI_VARIANTS[name][0](1)
            if slow_down.get(key(kind, name)):
                app = _slowed_asgi(app, slow_down[key(kind, name)])
            batch = asgi_batch(app, asyncio.new_event_loop(), SCOPE)
        batch(_WARM_UP)
        batches.append(batch)
    for batch in batches:
        gc.collect()
        gc.disable()
        # Counted: callgrind --toggle-collect=sys_call_tracing --dump-after=sys_call_tracing.
        sys.call_tracing(batch, (requests,))
        gc.enable()


def _child_environment(layout: int) -> dict[str, str]:
    """The same environment in every run, whoever starts it: the counts depend a little on
    where objects land in memory, and the environment's size moves that (see LAYOUTS)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONHASHSEED": "0",
        # The checkout's own src first: the counted obs is this checkout's, whichever checkout
        # the virtualenv's editable install points at (a worktree's bench counted main's).
        "PYTHONPATH": os.pathsep.join((str(_ROOT / "src"), str(_ROOT))),
        "LC_ALL": "C.UTF-8",
    }
    if layout:
        env["BENCH_LAYOUT"] = "x" * layout
    return env


def instructions(
    variants: list[tuple[str, str]],
    requests: int,
    slow_down: dict[str, int] | None = None,
    python: str | None = None,
    layout: int = 0,
) -> list[int]:
    """Instructions the counted requests of each of *variants* execute, in one interpreter
    under callgrind (one interpreter for all: start-up under valgrind costs more CPU than
    the requests)."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--collect-atstart=no", "--toggle-collect=sys_call_tracing",
             "--dump-after=sys_call_tracing",
             python or sys.executable, "-m", "bench.instructions", "--serve",
             json.dumps(variants), str(requests), json.dumps(slow_down or {})],
            capture_output=True, text=True, check=False, timeout=1800,
            env=_child_environment(layout),
        )  # fmt: skip
        counts = []
        for part in range(1, len(variants) + 1):
            path = Path(f"{out}.{part}")
            found = _TOTALS.search(path.read_text()) if path.exists() else None
            if found is None:
                break
            counts.append(int(found[1]))
    if proc.returncode != 0 or len(counts) != len(variants):
        raise SystemExit(f"Error: callgrind failed for {variants}: {proc.stderr[-2000:]}")
    return counts


def measure(
    wanted: Sequence[tuple[str, str]],
    requests: int,
    slow_down: dict[str, int] | None = None,
    python: str | None = None,
    layouts: Sequence[int] = (0,),
) -> dict[str, dict[str, Any]]:
    """Instructions per request of each wanted (kind, variant) and of its baseline.

    One interpreter per layout; with several layouts, each variant's median.
    Returns ``{key: {"per_request": n, "baseline": key or None, "added": n or None}}``.
    Variants whose imports fail are left out (peers are optional outside bench/.venv).
    """
    jobs: list[tuple[str, str]] = []
    for kind, name in wanted:
        baseline = GROUPS[kind][1][name][1]
        for variant in (baseline, name) if baseline else (name,):
            module = GROUPS[kind][1][variant][2]
            if python is None and missing(module) is not None:
                continue
            if (kind, variant) not in jobs:
                jobs.append((kind, variant))
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:  # one valgrind per core
        results = list(pool.map(
            lambda layout: instructions(jobs, requests, slow_down, python, layout), layouts
        ))  # fmt: skip
    samples: dict[tuple[str, str], list[float]] = {}
    for counts in results:
        for job, count in zip(jobs, counts, strict=True):
            samples.setdefault(job, []).append(count / requests)
    out: dict[str, dict[str, Any]] = {}
    for (kind, name), values in samples.items():
        baseline = GROUPS[kind][1][name][1]
        base = samples.get((kind, baseline)) if baseline else None
        # Added instructions per layout (variant and baseline from the same interpreter),
        # then the median over layouts.
        added = None if base is None else [v - b for v, b in zip(values, base, strict=True)]
        out[key(kind, name)] = {
            "per_request": round(statistics.median(values)),
            "baseline": key(kind, baseline) if baseline else None,
            "added": None if added is None else round(statistics.median(added)),
            "added_by_layout": None if added is None else [round(a) for a in added],
        }
    return out


def load_budgets(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Error: cannot read the budgets file {path}: {exc}") from exc
    return data


def check(budgets: dict[str, Any], counts: dict[str, dict[str, Any]]) -> tuple[bool, list[str]]:
    """Compare measured added instructions with the budgets of this Python; lines to print."""
    version = python_version()
    table = budgets.get("budgets", {}).get(version)
    tolerance = float(budgets.get("tolerance_percent", 3))
    if not table:
        return False, [
            f"Error: {BUDGETS.name} has no budgets for Python {version}; measure them with "
            "`python -m bench.instructions --write-budgets` on this Python"
        ]
    ok, lines = True, []
    for name, budget in table.items():
        row = counts.get(name)
        if row is None or row["added"] is None:
            ok = False
            lines.append(f"FAIL {name}: not measured (is it installed?); budget {budget:,}")
            continue
        limit = budget * (1 + tolerance / 100)
        over = 100 * (row["added"] / budget - 1)
        verdict = "ok  " if row["added"] <= limit else "FAIL"
        ok = ok and row["added"] <= limit
        lines.append(
            f"{verdict} {name}: {row['added']:,} added instructions per request, budget "
            f"{budget:,} ({over:+.1f} %, limit +{tolerance:g} %)"
        )
    return ok, lines


def write_budgets(path: Path, counts: dict[str, dict[str, Any]], requests: int) -> None:
    """Set this Python's budgets to *counts* (other Pythons' budgets are kept)."""
    data = load_budgets(path) if path.exists() else {}
    data.setdefault("tolerance_percent", 3)
    data.setdefault("budgets", {})[python_version()] = {
        name: counts[name]["added"] for name in sorted(counts) if counts[name]["added"] is not None
        and name in {key(k, v) for k, v in BUDGETED}
    }  # fmt: skip
    data.setdefault("measured_with", {})[python_version()] = {
        "requests": requests,
        "layouts": len(LAYOUTS),
        "python": platform.python_version(),
        "versions": _versions(),
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("starlette", "flask", "werkzeug", "prometheus-client", "structlog", "orjson"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _slow_down(specs: list[str]) -> dict[str, int]:
    out = {}
    for spec in specs:
        name, _, iterations = spec.rpartition("=")
        if not name or not iterations.isdigit():
            raise SystemExit(f"Error: --slow-down takes 'KIND VARIANT=ITERATIONS', got {spec!r}")
        out[name] = int(iterations)
    return out


def table(counts: dict[str, dict[str, Any]], requests: int) -> list[str]:
    lines = []
    for kind, (title, variants) in GROUPS.items():
        rows = [(name, counts[key(kind, name)]) for name in variants if key(kind, name) in counts]
        if not rows:
            continue
        lines.append(f"{title}: instructions per request ({requests} requests, callgrind)")
        for name, row in rows:
            extra = ""
            if row["added"] is not None:
                base = counts[row["baseline"]]["per_request"]
                extra = f"  +{row['added']:,} over {row['baseline'].split(' ', 1)[1]}"
                extra += f" (+{100 * row['added'] / base:.0f} %)"
            if row.get("added_by_layout") and len(row["added_by_layout"]) > 1:
                extra += f"  layouts: {', '.join(f'{a:,}' for a in row['added_by_layout'])}"
            lines.append(f"  {name:40} {row['per_request']:>9,}{extra}")
    return lines


def _layouts(args: argparse.Namespace) -> tuple[int, ...]:
    return LAYOUTS[: args.layouts or (1 if args.quick else len(LAYOUTS))]


def run_check(args: argparse.Namespace, emit: Callable[[str], None]) -> int:
    budgets = load_budgets(args.budgets)
    table_now = budgets.get("budgets", {}).get(python_version(), {})
    wanted = [(k, v) for k, v in BUDGETED if key(k, v) in table_now] or list(BUDGETED)
    if args.variants:
        chosen = {v.strip() for v in args.variants.split(",")}
        wanted = [(k, v) for k, v in wanted if key(k, v) in chosen]
        budgets = {**budgets, "budgets": {python_version(): {
            n: b for n, b in table_now.items() if n in chosen}}}  # fmt: skip
    requests = args.requests
    counts = measure(wanted, requests, _slow_down(args.slow_down), layouts=_layouts(args))
    ok, lines = check(budgets, counts)
    emit(f"instruction budgets, Python {python_version()} ({requests} requests per variant, "
         f"callgrind; {args.budgets.name}):")  # fmt: skip
    for line in lines:
        emit(f"  {line}")
    if not ok:
        emit("Over budget: find the new per-request work (python -m bench.instructions shows "
             "the counts) or, if it must stay, raise the budget with --write-budgets in the "
             "same commit and say why in CHANGELOG.md")  # fmt: skip
    return 0 if ok else 1


def run(quick: bool) -> dict[str, Any]:
    """The ``instructions`` section of ``python -m bench``: every installed variant, and this
    Python's budgets beside the counts."""
    requests = REQUESTS
    wanted = [(kind, name) for kind, (_, variants) in GROUPS.items() for name in variants]
    layouts = LAYOUTS[:1] if quick else LAYOUTS
    # The budgeted variants counted as ``--check`` counts them, in interpreters of their own:
    # in one with every peer built (OpenTelemetry's SDK, the exporters' registries) obs's WSGI
    # default measured 4 % more than make test's check of the same code.
    budgeted = measure(BUDGETED, requests, layouts=layouts)
    others = [job for job in wanted if job not in BUDGETED]
    counts = {**measure(others, requests, layouts=layouts), **budgeted}
    budgets = load_budgets(BUDGETS).get("budgets", {}).get(python_version(), {})
    ok, lines = check({"budgets": {python_version(): budgets}}, counts) if budgets else (None, [])
    return {
        "python": platform.python_version(),
        "requests": requests,
        "layouts": len(layouts),
        "counts": counts,
        "budgets": budgets,
        "within_budgets": ok,
        "check": lines,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=REQUESTS,
                        help=f"counted requests (default {REQUESTS}, the budgets')")  # fmt: skip
    parser.add_argument("--variants", help="comma-separated names (default: all installed)")
    parser.add_argument("--check", action="store_true", help="fail when over budget")
    parser.add_argument("--quick", action="store_true", help="one layout instead of all")
    parser.add_argument("--budgets", type=Path, default=BUDGETS)
    parser.add_argument("--write-budgets", action="store_true",
                        help="set this Python's budgets to the counts measured now")  # fmt: skip
    parser.add_argument("--slow-down", action="append", default=[], metavar="VARIANT=N",
                        help="add N empty loop iterations to each request of VARIANT "
                        "(e.g. 'asgi obs default=2000'): shows the check failing")  # fmt: skip
    parser.add_argument("--layouts", type=int, choices=range(1, len(LAYOUTS) + 1),
                        help=f"memory layouts to take the median of (default {len(LAYOUTS)})")  # fmt: skip
    parser.add_argument("--out", type=Path, help="run as a section of python -m bench")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)  # [[KIND, NAME]] N {SLOW}
    args = parser.parse_args(argv)
    if args.serve:
        names, n, slow = args.serve
        serve([(k, v) for k, v in json.loads(names)], int(n), json.loads(slow))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("Error: valgrind is not installed; run: sudo apt-get install -y valgrind")
    if args.out:
        text = json.dumps(run(args.quick), indent=2, sort_keys=True) + "\n"
        args.out.write_text(text)
        return 0
    if args.check:
        return run_check(args, lambda line: print(line, flush=True))
    requests = args.requests
    if args.write_budgets:
        counts = measure(list(BUDGETED), requests, layouts=_layouts(args))
        write_budgets(args.budgets, counts, requests)
    else:
        wanted = [(kind, name) for kind, (_, variants) in GROUPS.items() for name in variants]
        if args.variants:
            chosen = {v.strip() for v in args.variants.split(",")}
            wanted = [(k, v) for k, v in wanted if v in chosen or key(k, v) in chosen]
        counts = measure(wanted, requests, _slow_down(args.slow_down), layouts=_layouts(args))
    for line in table(counts, requests):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
