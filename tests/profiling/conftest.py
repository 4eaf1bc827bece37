from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

SPEEDSCOPE_SCHEMA = ROOT / "tools/node_modules/speedscope/dist/release/file-format-schema.json"


def speedscope_schema() -> dict[str, Any]:
    """The published speedscope file-format schema, from the npm package the bootstrap installs."""
    if not SPEEDSCOPE_SCHEMA.is_file():
        pytest.fail(
            f"{SPEEDSCOPE_SCHEMA} is missing; run: bash scripts/bootstrap.sh --system "
            "(it installs the npm package speedscope into tools/node_modules)."
        )
    schema: dict[str, Any] = json.loads(SPEEDSCOPE_SCHEMA.read_text())
    return schema


def validate_speedscope(path_or_text: Path | str) -> dict[str, Any]:
    """Parse a speedscope document and validate it against the published schema."""
    import jsonschema

    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    document: dict[str, Any] = json.loads(text)
    jsonschema.validate(document, speedscope_schema())
    return document


def speedscope_frame_names(document: dict[str, Any]) -> set[str]:
    return {frame["name"] for frame in document["shared"]["frames"]}
