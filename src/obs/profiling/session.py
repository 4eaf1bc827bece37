"""Write a pyinstrument session as a speedscope file and an HTML page, privately.

Shared by the one-request profiler and :func:`obs.profile`; pyinstrument is imported only here
and only when a profile is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from obs.profiling.storage import (
    HTML_SUFFIX,
    SPEEDSCOPE_SUFFIX,
    ensure_directory,
    prune,
    write_private,
)
from obs.profiling.threads import FrameRecord


def limit_records(records: list[FrameRecord], max_duration: float) -> list[FrameRecord]:
    """The leading records covering at most *max_duration* seconds of sampled time."""
    kept: list[FrameRecord] = []
    total = 0.0
    for record in records:
        total += record[1]
        if total > max_duration:
            break
        kept.append(record)
    return kept


def with_records(session: Any, extra: list[FrameRecord], max_duration: float) -> Any:
    """*session* capped to *max_duration*, with *extra* records (other threads) added."""
    from pyinstrument.session import Session

    records = limit_records(session.frame_records, max_duration) + extra
    return Session(
        frame_records=records,
        start_time=session.start_time,
        duration=min(session.duration, max_duration),
        min_interval=session.min_interval,
        max_interval=session.max_interval,
        sample_count=len(records),
        start_call_stack=session.start_call_stack,
        target_description=session.target_description,
        cpu_time=session.cpu_time,
        sys_path=session.sys_path,
        sys_prefixes=session.sys_prefixes,
    )


def conform_speedscope(text: str) -> str:
    """pyinstrument's speedscope output, made to validate against the published schema."""
    document = json.loads(text)
    if document.get("activeProfileIndex") is None:  # pyinstrument writes null; a number is due
        document["activeProfileIndex"] = 0
    for frame in document.get("shared", {}).get("frames", []):
        for key in ("file", "line", "col"):  # null where unknown; the schema wants them absent
            if key in frame and frame[key] is None:
                del frame[key]
    document.setdefault("exporter", "obs (pyinstrument)")
    return json.dumps(document) + "\n"


def write_session(session: Any, directory: Path, stem: str, max_files: int) -> Path:
    """Write ``<stem>.speedscope.json`` and ``<stem>.html`` (0600); return the HTML path."""
    from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer

    ensure_directory(directory)
    speedscope = directory / (stem + SPEEDSCOPE_SUFFIX)
    html = directory / (stem + HTML_SUFFIX)
    write_private(speedscope, conform_speedscope(SpeedscopeRenderer().render(session)))
    write_private(html, HTMLRenderer().render(session))
    prune(directory, max_files)
    return html
