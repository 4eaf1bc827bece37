"""obs.demo.report: reading the service's log back."""

from __future__ import annotations

import json
from pathlib import Path

from obs.demo.report import read_access_lines


def test_a_line_with_a_unicode_line_separator_in_a_string_is_kept(tmp_path: Path) -> None:
    """JSON lines carry U+2028, U+2029, U+0085, FS/GS/RS unescaped inside strings; only "\\n"
    ends a line (``str.splitlines()`` split these and dropped the access line)."""
    log = tmp_path / "service.log"
    lines = [
        {"event": "request", "request_id": f"r{n}", "path": f"/items/a{sep}b", "status": 200}
        for n, sep in enumerate(["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b"])
    ]
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    assert "\u2028" in text  # written raw, as orjson does
    log.write_text(text + '{"event": "app", "request_id": "r0"}\n', encoding="utf-8")
    access, by_request = read_access_lines(log)
    assert [record["request_id"] for record in access] == [f"r{n}" for n in range(len(lines))]
    assert [record["path"] for record in access] == [line["path"] for line in lines]
    assert len(by_request["r0"]) == 2
