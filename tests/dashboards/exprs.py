"""Pull PromQL out of generated dashboards and make it runnable outside Grafana."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# Grafana's interval variables, as a 1-minute window (plenty at a 1 s scrape interval).
BUILTINS = {"__rate_interval": "1m", "__range": "1m", "__interval": "1m"}
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\{|\[)")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*\w+\)$")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def prometheus_exprs(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` for every Prometheus target and query variable of *dashboard*."""
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "prometheus":
                yield f"{dashboard['title']} / {panel['title']} / {target['refId']}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query" and variable["datasource"]["type"] == "prometheus":
            match = _LABEL_VALUES.match(variable["query"])
            assert match, variable["query"]
            yield f"{dashboard['title']} / ${variable['name']}", match.group(1)


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` dashboard variables; leave ``${1}`` and the like."""
    table = {**BUILTINS, **values}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return table.get(name, match.group(0))

    result = re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)
    leftover = re.findall(r"\$(?!\{?\d)\{?\w+", result)
    assert not leftover, f"unsubstituted variables {leftover} in {result}"
    return result


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (every name followed by ``{`` or ``[``)."""
    return set(_NAME.findall(expr)) - {"by", "without"}
