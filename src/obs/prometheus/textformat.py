"""The pieces of Prometheus's text formats that both renderers share: numbers as Go prints them,
escaped label values and help texts."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from prometheus_client.utils import floatToGoString

go_float = cast(Callable[[float], str], floatToGoString)

# Integers below this print as "<n>.0" in Go's float format; from 1e6 on Go uses exponents.
_SMALL_INT = 1_000_000


def number(value: float) -> str:
    """``floatToGoString``, with a fast path for the small whole numbers that counts are."""
    if value.__class__ is int and 0 <= value < _SMALL_INT:
        return f"{value}.0"
    return go_float(value)


def escape_value(value: str) -> str:
    """A label value as the text formats write it between quotes."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def help_text(documentation: str) -> str:
    """A ``# HELP`` text in the Prometheus text format."""
    return documentation.replace("\\", r"\\").replace("\n", r"\n")
