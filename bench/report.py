"""Turns section results into the targets, the Markdown tables, the JSON files and the README
block between ``<!-- bench:start -->`` and ``<!-- bench:end -->``."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.apps import ASGI_VARIANTS, WSGI_VARIANTS
from bench.common import median_ci
from bench.http_load import GROUPS as HTTP_GROUPS
from bench.logging_throughput import LOGGERS

PEER_PREFIXES = ("starlette-exporter", "prometheus-flask-exporter")

# Typographic signs for the README, spelled as escapes to keep the source plain ASCII-looking.
TIMES, DASH = "\u00d7", "\u2013"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

PACKAGES = (
    "obs-toolkit", "prometheus-client", "structlog", "orjson", "starlette", "fastapi", "flask",
    "uvicorn", "gunicorn", "starlette-exporter", "prometheus-fastapi-instrumentator",
    "opentelemetry-sdk", "opentelemetry-instrumentation-asgi", "opentelemetry-instrumentation-wsgi",
    "asgi-correlation-id", "prometheus-flask-exporter", "python-json-logger", "loguru",
)  # fmt: skip


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _target(name: str, measured: Any, goal: str, met: bool | None) -> dict[str, Any]:
    return {"target": name, "measured": measured, "goal": goal, "met": met}


def targets(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Every acceptance target with the figure it was judged on (``met`` is None if unmeasured)."""
    out = []
    asgi = sections.get("asgi", {})
    one = _get(asgi, "routes", "1") or {}
    fifty = _get(asgi, "routes", "50") or {}

    def overhead(table: dict[str, Any], name: str) -> float | None:
        return _get(table, name, "overhead_us", "median")

    default, metrics_only = overhead(one, "obs default"), overhead(one, "obs metrics-only")
    peer_stack = "starlette-exporter + asgi-correlation-id + structlog"
    out.append(_target("ASGI obs default overhead", _us(default), "≤ 10 µs",
                       None if default is None else default <= 10))  # fmt: skip
    out.append(_overhead_ratio_target(
        "ASGI obs default vs starlette-exporter + asgi-correlation-id/structlog, wall clock",
        one.get("obs default"), one.get(peer_stack), 0.25,
    ))  # fmt: skip
    out.append(_target("ASGI obs metrics-only overhead", _us(metrics_only), "≤ 3 µs",
                       None if metrics_only is None else metrics_only <= 3))  # fmt: skip
    for name in ("obs default", "obs metrics-only"):
        a, b = overhead(one, name), overhead(fifty, name)
        diff = None if a is None or b is None else b - a
        out.append(_target(
            f"ASGI {name}: 50 routes vs 1 route",
            None if diff is None else f"{diff:+.2f} µs ({_us(a)} → {_us(b)})",
            "within 1 µs", None if diff is None else abs(diff) <= 1,
        ))  # fmt: skip
    wsgi = _get(sections, "wsgi", "variants", "obs default", "overhead_us", "median")
    out.append(_target("WSGI obs default overhead", _us(wsgi), "≤ 10 µs",
                       None if wsgi is None else wsgi <= 10))  # fmt: skip
    variants = _get(sections, "wsgi", "variants") or {}
    out.append(_overhead_ratio_target(
        "WSGI obs default vs prometheus-flask-exporter, wall clock",
        variants.get("obs default"), variants.get("prometheus-flask-exporter"), 0.6,
    ))  # fmt: skip
    counts = _get(sections, "instructions", "counts") or {}
    for kind, peer, goal in (
        ("asgi", "starlette-exporter + asgi-correlation-id + structlog", 0.25),
        ("wsgi", "prometheus-flask-exporter", 0.6),
    ):
        ours = _get(counts, f"{kind} obs default", "added")
        theirs = _get(counts, f"{kind} {peer}", "added")
        ratio = None if ours is None or not theirs else ours / theirs
        out.append(_target(
            f"{kind.upper()} obs default vs {peer}, instructions",
            None if ratio is None else f"{ratio:.2f}{TIMES} ({ours:,} vs {theirs:,} added)",
            f"≤ {goal}{TIMES}", None if ratio is None else ratio <= goal,
        ))  # fmt: skip
    budget_lines = _get(sections, "instructions", "check")
    if budget_lines:
        out.append(_target("Instruction budgets (bench/budgets.json, +3 %)",
                           "; ".join(line.split(" (")[0] for line in budget_lines),
                           "every variant within", _get(sections, "instructions", "within_budgets")))  # fmt: skip
    for group, rows in (_get(sections, "http", "groups") or {}).items():
        obs_row = rows.get("obs default (server log off)")
        if not obs_row:
            continue
        r = obs_row["ratio"]
        met = True if r["low"] >= 1 else (False if r["high"] < 1 else None)
        out.append(_target(
            f"HTTP {group}: obs default vs bare + server access log",
            _ratio(r), f"≥ 1{TIMES} (interval not below)", met,
        ))  # fmt: skip
        peers = {n: row["ratio"]["median"] for n, row in rows.items()
                 if n.startswith(PEER_PREFIXES)}  # fmt: skip
        if peers:
            out.append(_target(
                f"HTTP {group}: obs default vs every peer stack",
                ", ".join(f"{n.split(' + server')[0].split(' (')[0]} {v:.2f}{TIMES}"
                          for n, v in peers.items()) + f"; obs {r['median']:.2f}{TIMES}",
                "faster than each (medians)", all(r["median"] > v for v in peers.values()),
            ))  # fmt: skip
    loggers = _get(sections, "logging", "loggers") or {}
    ours = _get(loggers, "obs", "lines_per_second", "median")
    stdlib = _get(loggers, "stdlib + python-json-logger", "lines_per_second", "median")
    ratio = None if not ours or not stdlib else ours / stdlib
    out.append(_target(
        "JSON logging vs stdlib + python-json-logger",
        None if ratio is None else f"{ratio:.2f}{TIMES} ({ours:,} vs {stdlib:,} lines/s)",
        f"≥ 2{TIMES}", None if ratio is None else ratio >= 2,
    ))  # fmt: skip
    growth = _get(sections, "memory", "growth_percent")
    out.append(_target("Memory growth after 100k requests / 10k unmatched paths",
                       None if growth is None else f"{growth:+.2f} %", "within 5 %",
                       None if growth is None else abs(growth) <= 5))  # fmt: skip
    for mode, ours_key, theirs_key in (
        ("single_process", "obs text", "prometheus_client text"),
        ("single_process", "obs openmetrics", "prometheus_client openmetrics"),
        ("multiprocess", "obs text", "prometheus_client text"),
        ("multiprocess", "obs openmetrics", "prometheus_client openmetrics"),
    ):
        block = _get(sections, "exposition", mode) or {}
        a, b = _get(block, "ms", ours_key, "median"), _get(block, "ms", theirs_key, "median")
        same = all((_get(block, "same_samples") or {"x": False}).values())
        speedup = None if not a or not b else b / a
        label = ours_key.removeprefix("obs ")
        out.append(_target(
            f"/metrics render, {mode.replace('_', ' ')}, {label}, "
            f"{_get(block, 'label_sets') or 0:,} label sets",
            None if speedup is None else f"{speedup:.1f}{TIMES} faster ({a:g} vs {b:g} ms), "
            f"same samples: {'yes' if same else 'NO'}",
            f"≥ 2{TIMES} faster, same samples", None if speedup is None else speedup >= 2 and same,
        ))  # fmt: skip
    return out


def _overhead_ratio_target(
    what: str, ours: dict[str, Any] | None, theirs: dict[str, Any] | None, goal: float
) -> dict[str, Any]:
    """Our overhead over a peer's, one ratio per interleaved round (the two overheads of a
    round were measured minutes apart at most), as a median with its 95 % interval; met when
    the whole interval is within *goal*, unknown when it straddles it."""
    a = _get(ours, "overhead_us", "rounds")
    b = _get(theirs, "overhead_us", "rounds")
    ratios = [x / y for x, y in zip(a or (), b or (), strict=False) if y > 0]
    if not ratios:
        return _target(what, None, f"≤ {goal}{TIMES}", None)
    median, low, high = median_ci(ratios)
    met = True if high <= goal else (False if low > goal else None)
    shown = (
        f"{median:.2f}{TIMES} (95 % CI {low:.2f}{DASH}{high:.2f}; "
        f"{_us(_get(ours, 'overhead_us', 'median'))} vs "
        f"{_us(_get(theirs, 'overhead_us', 'median'))})"
    )
    return _target(what, shown, f"≤ {goal}{TIMES}", met)


def _ordered(rows: dict[str, Any], order: Any) -> list[tuple[str, Any]]:
    """Rows in the order the variants are defined (the JSON files sort keys)."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(rows.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _us(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f} µs"


def _ratio(r: dict[str, float] | None) -> str:
    if not r:
        return DASH
    return f"{r['median']:.2f}{TIMES} ({r['low']:.2f}{DASH}{r['high']:.2f})"


def _fig(row: dict[str, Any] | None, unit: str = "", digits: int = 1) -> str:
    if not row:
        return f"{DASH}"
    return f"{row['median']:,.{digits}f}{unit} ({row['min']:,.{digits}f}{DASH}{row['max']:,.{digits}f})"


def _by_python(by_python: dict[str, Any]) -> list[str]:
    """Instructions and in-process overheads side by side for every Python measured."""
    versions = sorted(by_python, key=lambda v: tuple(map(int, v.split("."))))
    if not versions:
        return []
    head = " | ".join(f"Python {v}" for v in versions)
    rule = " | ".join("---" for _ in versions)
    lines = []
    counted = {v: _get(by_python, v, "instructions", "counts") or {} for v in versions}
    if any(counted.values()):
        requests = next(_get(by_python, v, "instructions", "requests") for v in versions
                        if counted[v])  # fmt: skip
        lines += ["", f"**Instructions per request** (callgrind, {requests:,} counted requests "
                  "after warm-up, garbage collector off while counting; added over the bare "
                  "framework in brackets; `python -m bench.instructions`)", "",
                  f"| Stack | {head} |", f"| --- | {rule} |"]  # fmt: skip
        names: list[str] = []
        for v in versions:
            names += [n for n in counted[v] if n not in names]
        order = [
            f"{k} {n}" for k, d in (("wsgi", WSGI_VARIANTS), ("asgi", ASGI_VARIANTS)) for n in d
        ]
        for name in sorted(names, key=lambda n: order.index(n) if n in order else len(order)):
            cells = []
            for v in versions:
                row = counted[v].get(name)
                if row is None:
                    cells.append(DASH)
                else:
                    added = "" if row["added"] is None else f" (+{row['added']:,})"
                    cells.append(f"{row['per_request']:,}{added}")
            lines.append(f"| {name} | {' | '.join(cells)} |")
    rows = (
        ("ASGI obs metrics-only", ("asgi", "routes", "1", "obs metrics-only", "overhead_us")),
        ("ASGI obs default", ("asgi", "routes", "1", "obs default", "overhead_us")),
        ("ASGI starlette-exporter + asgi-correlation-id + structlog",
         ("asgi", "routes", "1", "starlette-exporter + asgi-correlation-id + structlog", "overhead_us")),
        ("WSGI obs metrics-only", ("wsgi", "variants", "obs metrics-only", "overhead_us")),
        ("WSGI obs default", ("wsgi", "variants", "obs default", "overhead_us")),
        ("WSGI prometheus-flask-exporter", ("wsgi", "variants", "prometheus-flask-exporter", "overhead_us")),
    )  # fmt: skip
    if any(_get(by_python, v, "asgi", "routes") or _get(by_python, v, "wsgi", "variants")
           for v in versions):  # fmt: skip
        lines += ["", "**In-process overhead by Python** (µs added per request over the bare "
                  f"framework, median (min{DASH}max) of interleaved rounds; wall clock on a shared VM)",
                  "", f"| Stack | {head} |", f"| --- | {rule} |"]  # fmt: skip
        for label, path in rows:
            lines.append(f"| {label} | "
                         + " | ".join(_fig(_get(by_python, v, *path)) for v in versions) + " |")  # fmt: skip
    errors = [f"{name} on Python {v}: `{section['error']}`" for v in versions
              for name, section in by_python[v].items() if "error" in section]  # fmt: skip
    if errors:
        lines += ["", "Not measured: " + "; ".join(errors) + "."]
    return lines


def markdown(result: dict[str, Any]) -> str:
    sections = result["sections"]
    m = result["machine"]
    lines = [
        f"Generated by `make bench` (`python -m bench{' --quick' if result['quick'] else ''}`) "
        f"on {result['date']}: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"load average at start {', '.join(map(str, m['load_average_at_start']))}. "
        f"Each figure is the median of interleaved rounds, (min{DASH}max) beside it; overheads are "
        "per-round differences from the baseline named. Raw data: `bench/results/latest.json`. "
        "Met: ✓ yes, ✗ no, ? the 95 % interval straddles the goal.",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(m.get("versions", {}).items()))
        + ".",
        "",
        "| Target | Measured | Goal | Met |",
        "| --- | --- | --- | --- |",
    ]
    for t in result["targets"]:
        met = ("?" if t["measured"] else DASH) if t["met"] is None else ("✓" if t["met"] else "✗")
        lines.append(f"| {t['target']} | {t['measured'] or 'not measured'} | {t['goal']} | {met} |")
    lines += _by_python(result.get("by_python") or {})
    asgi = sections.get("asgi")
    if asgi and "routes" in asgi:
        lines += ["", "**In-process ASGI** (µs per request; one route, and 50 routes with the "
                  "measured one last; access lines to /dev/null)", "",
                  "| Stack | 1 route | overhead | 50 routes | overhead |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        one, fifty = asgi["routes"].get("1", {}), asgi["routes"].get("50", {})
        for name, row in _ordered(one, ASGI_VARIANTS):
            other = fifty.get(name, {})
            lines.append(
                f"| {name} | {_fig(row['us_per_request'])} | {_fig(row.get('overhead_us'))} "
                f"| {_fig(other.get('us_per_request'))} | {_fig(other.get('overhead_us'))} |"
            )
    wsgi = sections.get("wsgi")
    if wsgi and "variants" in wsgi:
        lines += ["", "**In-process WSGI** (µs per request, Flask)", "",
                  "| Stack | µs/request | overhead |", "| --- | --- | --- |"]  # fmt: skip
        for name, row in _ordered(wsgi["variants"], WSGI_VARIANTS):
            lines.append(
                f"| {name} | {_fig(row['us_per_request'])} | {_fig(row.get('overhead_us'))} |"
            )
        for name, why in wsgi.get("skipped", {}).items():
            lines.append(f"| {name} | not measured: {why} | {DASH} |")
    http = sections.get("http")
    if http and "groups" in http:
        lines += ["", f"**Over HTTP**, each stack as people run it, on 127.0.0.1 ({http['generator']}, "
                  f"{http['connections']} connections, {http['seconds']:g} s {TIMES} {http['rounds']} "
                  "interleaved rounds, every server's stdout a pipe read by `wc -l`). Ratio: requests/s "
                  f"over the same round's *{http['reference']}*, median and 95 % interval; requests/s and "
                  "p99 latency are context only (on this VM they move by ±20 % between rounds).", "",
                  "| Server | Stack | ratio (95 % CI) | requests/s | p99 ms | stdout lines/request |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        commands = []
        for group, rows in _ordered(http["groups"], HTTP_GROUPS):
            for name, row in _ordered(rows, HTTP_GROUPS.get(group, {})):
                lines.append(f"| {group} | {name} | {_ratio(row['ratio'])} | "
                             f"{_fig(row['rps'], digits=0)} | {_fig(row['p99_ms'], digits=2)} | "
                             f"{row['stdout_lines_per_request']:.2f} |")  # fmt: skip
                commands.append(f"`{row['command']}`")
        lines += ["", "Server command lines: " + "; ".join(dict.fromkeys(commands)) + "."]
    logs = sections.get("logging")
    if logs and "loggers" in logs:
        lines += ["", "**JSON logging** to a file (lines per second)", "",
                  "| Logger | lines/s | bytes/line |", "| --- | --- | --- |"]  # fmt: skip
        for name, row in _ordered(logs["loggers"], LOGGERS):
            lines.append(
                f"| {name} | {_fig(row['lines_per_second'], digits=0)} | {row['bytes_per_line']} |"
            )
    expo = sections.get("exposition")
    if expo and "single_process" in expo:
        lines += ["", f"**`/metrics` rendering**, {expo['single_process']['label_sets']:,} label "
                  "sets of the duration histogram (ms per scrape)", "",
                  "| Mode | Renderer | ms |", "| --- | --- | --- |"]  # fmt: skip
        for mode in ("single_process", "multiprocess"):
            block = expo.get(mode, {})
            suffix = f" ({block.get('workers')} worker files)" if mode == "multiprocess" else ""
            for name, row in block.get("ms", {}).items():
                lines.append(f"| {mode.replace('_', ' ')}{suffix} | {name} | {_fig(row)} |")
    mem = sections.get("memory")
    if mem and "growth_percent" in mem:
        lines += ["", f"**Memory**: RSS {mem['rss_mb_after_warmup']} MB after warm-up, "
                  f"{mem['rss_mb_after']} MB after {mem['requests']:,} requests over "
                  f"{mem['distinct_unmatched_paths']:,} distinct unmatched paths "
                  f"({mem['growth_percent']:+.2f} %)."]  # fmt: skip
    failed = {k: v["error"] for k, v in sections.items() if isinstance(v, dict) and "error" in v}
    for name, error in failed.items():
        lines += ["", f"Section `{name}` failed: `{error}`"]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], results_dir: Path, readme: Path | None) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = results_dir / f"{stamp}{'-quick' if result['quick'] else ''}.json"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    if readme is not None and readme.exists():
        content = readme.read_text()
        if START in content and END in content:
            head, rest = content.split(START, 1)
            _, tail = rest.split(END, 1)
            readme.write_text(f"{head}{START}\n{markdown(result)}{END}{tail}")
    return path
