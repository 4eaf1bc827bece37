"""Deterministic text for generated files: JSON with sorted keys, a small YAML emitter.

Regenerating must give byte-identical files, so nothing here depends on dict order from
outside, the clock or the environment.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder

# Emitted by the SDK for every variable although only interval variables know them; Grafana's
# published schema (@grafana/schema) rejects them elsewhere.
_INTERVAL_ONLY_KEYS = ("auto", "auto_count", "auto_min")


def dumps_json(data: Any) -> str:
    """``json.dumps`` with sorted keys, 2-space indent and a trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


class DuplicatePanelIdError(ValueError):
    """Two panels of one dashboard were given the same explicit id."""


def dashboard_data(dashboard: cogbuilder.Builder[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """Build *dashboard* into plain JSON data, with panel ids and query ref ids filled in.

    Panel ids are unique by construction: an explicit id (``.id(100)``) is kept, and every panel
    or row without one (the SDK gives rows ``id: 0``) gets the next free id in layout order. Two
    equal explicit ids are an error, since Grafana would open the wrong panel from a link.
    """
    if isinstance(dashboard, Mapping):
        data: dict[str, Any] = json.loads(json.dumps(dashboard))
    else:
        data = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for variable in data.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in _INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    for link in data.get("links", []):
        # The SDK sets every link's placement to "inControlsMenu", which hides obs's links
        # (sibling dashboards, flame graphs) in Grafana 13's controls drop-down.
        link.pop("placement", None)
    panels = list(_walk_panels(data.get("panels", [])))
    explicit = [panel["id"] for panel in panels if panel.get("id")]
    duplicates = sorted({i for i in explicit if explicit.count(i) > 1})
    if duplicates:
        raise DuplicatePanelIdError(
            f"dashboard {data.get('title')!r} gives panel id(s) {duplicates} to several panels; "
            "give each panel its own id or none (ids are then assigned in order)."
        )
    taken = set(explicit)
    next_id = 1
    for panel in panels:
        if not panel.get("id"):
            while next_id in taken:
                next_id += 1
            panel["id"] = next_id
            taken.add(next_id)
        if panel.get("type") == "table":
            # The SDK still writes the table footer into options; since Grafana 12 the schema
            # has no such option (the footer moved to the field config) and rejects it.
            panel.get("options", {}).pop("footer", None)
        for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            link.pop("placement", None)
        for letter, query in zip(string.ascii_uppercase, panel.get("targets", []), strict=False):
            if not query.get("refId"):
                query["refId"] = letter
    return data


def _walk_panels(panels: Sequence[dict[str, Any]]) -> Any:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


# -- YAML ---------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping | list) and bool(value)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            _emit_entry(f"{pad}{_scalar(key)}:", item, indent, lines)
    else:
        for item in value:
            if isinstance(item, Mapping) and item:
                start = len(lines)
                _emit(item, indent + 2, lines)
                lines[start] = f"{pad}- {lines[start][indent + 2 :]}"
            else:
                _emit_entry(f"{pad}-", item, indent, lines)


def _emit_entry(head: str, item: Any, indent: int, lines: list[str]) -> None:
    if _is_block(item):
        lines.append(head)
        _emit(item, indent + 2, lines)
    elif isinstance(item, str) and "\n" in item:
        lines.append(f"{head} |-")
        lines.extend(f"{' ' * (indent + 2)}{line}".rstrip() for line in item.splitlines())
    elif isinstance(item, Mapping | list):
        lines.append(f"{head} {'{}' if isinstance(item, Mapping) else '[]'}")
    else:
        lines.append(f"{head} {_scalar(item)}")


def dumps_yaml(data: Mapping[str, Any], *, header: str = "") -> str:
    """Block-style YAML of *data* (mappings, lists, scalars) in insertion order.

    Strings that could be misread are double-quoted; multi-line strings become ``|-`` blocks.
    *header* lines are written first as ``#`` comments.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"
