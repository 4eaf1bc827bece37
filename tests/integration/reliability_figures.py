"""The figures of the last reliability run, for the README's "Reliability" section.

``tests/integration/test_load_no_loss.py`` calls :func:`record` after each server's run. An
ordinary run writes ``build/reliability-figures.json`` (ignored by git, so ``make test`` leaves
the tree clean); a run with ``OBS_RECORD_FIGURES=1`` rewrites the committed
``reliability-figures.json`` next to this file (sorted keys, 2-space indent), the source of the
README section. The fault and hostile-input cases of ``tests/test_reliability.py`` are counted
from that module itself.

    OBS_RECORD_FIGURES=1 .venv/bin/python -m pytest tests/integration/test_load_no_loss.py
    .venv/bin/python -m tests.integration.reliability_figures   # print the README section
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

FIGURES = Path(__file__).resolve().parent / "reliability-figures.json"
LAST_RUN = Path(__file__).resolve().parents[2] / "build" / "reliability-figures.json"
COMMAND = (
    ".venv/bin/python -m pytest tests/integration/test_load_no_loss.py tests/test_reliability.py"
)


def in_process_cases() -> dict[str, Any]:
    """Fault and hostile-input cases of ``tests/test_reliability.py``, read from the module."""
    from tests import test_reliability as cases

    fuzzed = cases.test_hostile_ids_never_reach_headers_or_logs_unescaped
    examples = fuzzed._hypothesis_internal_use_settings.max_examples  # type: ignore[attr-defined]
    # Requests each fault test sends through the broken part (see the tests themselves).
    faults = {
        "log stream on a full disk (ENOSPC)": (
            cases.test_a_full_disk_for_logs_costs_no_request,
            20,
        ),
        "metrics that raise": (cases.test_a_raising_metric_costs_no_request, 5),
        "closed log stream": (cases.test_a_closed_log_stream_costs_no_request, 1),
    }
    return {
        "faults": {name: requests for name, (_, requests) in faults.items()},
        "hostile_inputs": {
            "fuzzed X-Request-ID/traceparent pairs (hypothesis)": examples,
            "over-long request ids against the OpenMetrics exemplar cap": 8,
            "secrets in headers and query strings": 6,
        },
        "behaviour_cases_byte_identical": len(cases.CORPUS),
    }


def record(server: str, figures: dict[str, Any], path: Path | None = None) -> None:
    """Store one server's load figures and refresh the totals (see the module's docstring)."""
    if path is None:
        path = FIGURES if os.environ.get("OBS_RECORD_FIGURES") == "1" else LAST_RUN
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
    load = data.setdefault("load", {})
    load[server] = figures
    data["in_process"] = in_process_cases()
    data["command"] = COMMAND
    data["totals"] = {
        "requests_held": sum(run["requests_completed"] for run in load.values()),
        "workers_sigkilled_and_respawned": len(load),
        "access_lines_lost": sum(
            run["requests_completed"] - run["access_lines"] for run in load.values()
        ),
        "counts_lost": sum(
            run["requests_completed"] - run["counter_total"] for run in load.values()
        ),
        "torn_lines": sum(run["torn_lines"] for run in load.values()),
    }
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def readme_section(data: dict[str, Any]) -> str:
    """The README's "Reliability" section, from the recorded figures."""
    totals, cases = data["totals"], data["in_process"]
    rows = []
    for name in sorted(data["load"]):
        run = data["load"][name]
        killed = run["killed_in_flight"]
        rows.append(
            f"| {name}, {run['workers']} workers | {run['requests_completed']:,} "
            f"| {run['access_lines']:,} | {run['counter_total']:,} | {run['torn_lines']} "
            f"| {killed['unanswered']} unanswered, {killed['answered_not_counted']} answered "
            f"but not recorded | {run['respawn_seconds']} s "
            f"| {run['requests_per_second']:,}/s, {run['test_seconds']} s |"
        )
    faults = ", ".join(
        f"{name} ({n} request{'s' if n > 1 else ''})" for name, n in cases["faults"].items()
    )
    hostile = ", ".join(f"{n} {name}" for name, n in cases["hostile_inputs"].items())
    paragraphs = [
        f"From the last recorded run of `OBS_RECORD_FIGURES=1 {data['command']}` (figures in "
        "`tests/integration/reliability-figures.json`):",
        f"- **Requests held**: {totals['requests_held']:,}, through gunicorn and through uvicorn, "
        "3 workers each sharing one stdout pipe, wrk on 10 connections; one worker SIGKILLed "
        f"mid-run and respawned in each ({totals['workers_sigkilled_and_respawned']} kills "
        "survived).",
        f"- **Lost**: {totals['access_lines_lost']} access lines, {totals['counts_lost']} counts, "
        f"{totals['torn_lines']} torn lines: every request answered by a live worker has exactly "
        "one whole JSON access line and one count, matched by request id.",
        "- **Faults injected and survived**, no request failed: " + faults + ".",
        f"- **Hostile inputs tried**: {hostile}; "
        f"{cases['behaviour_cases_byte_identical']} kinds of response byte-identical with and "
        "without obs.",
    ]
    text = "\n\n".join(
        [
            "## Reliability",
            _fill(paragraphs[0]),
            "\n".join(_fill(p, subsequent_indent="  ") for p in paragraphs[1:]),
            "\n".join(
                [
                    "| server | answered | access lines | counted | torn "
                    "| killed worker's in flight | respawn | load |",
                    "|---|---|---|---|---|---|---|---|",
                    *rows,
                ]
            ),
            _fill(
                "The killed worker's requests in flight are the only ones without a line or a "
                "count: unanswered (the client saw a connection error), or answered in the "
                "instant before obs recorded them. Everything it completed stays counted. See "
                "[docs/multiprocess.md](docs/multiprocess.md#what-a-killed-worker-loses)."
            ),
        ]
    )
    return text + "\n"


def _fill(text: str, subsequent_indent: str = "") -> str:
    return textwrap.fill(
        text,
        100,
        subsequent_indent=subsequent_indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def main() -> int:
    if not FIGURES.exists():
        print(f"Error: no {FIGURES.name} yet; run: {COMMAND}", file=sys.stderr)
        return 1
    print(readme_section(json.loads(FIGURES.read_text())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
