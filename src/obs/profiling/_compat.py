"""What obs relies on of pyinstrument's internals, in one place.

The thread sampler (:mod:`obs.profiling.threads`) writes stacks in pyinstrument's frame-record
format so that pyinstrument renders them beside its own; the separators come from pyinstrument's
``frame_info`` module rather than being written by hand. :data:`PRIVATE_NAMES` lists what is read
here, so that ``tests/profiling/test_compat.py`` names the symbol and the installed version when
a release renames one. Imported only while a profile is being taken.
"""

from __future__ import annotations

from pyinstrument import frame_info

#: ``(dotted name, what obs uses it for)``.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("pyinstrument.frame_info.IDENTIFIER_SEP", "between a frame's function, file and line"),
    ("pyinstrument.frame_info.ATTRIBUTES_SEP", "before a frame's attributes"),
    ("pyinstrument.frame_info.ATTRIBUTE_MARKER_LINE_NUMBER", "the line-number attribute"),
)


def installed_version() -> str:
    """The installed pyinstrument version (for messages; importlib.metadata is loaded only here)."""
    from importlib.metadata import version

    return version("pyinstrument")


IDENTIFIER_SEP: str = frame_info.IDENTIFIER_SEP
ATTRIBUTES_SEP: str = frame_info.ATTRIBUTES_SEP
LINE_NUMBER: str = frame_info.ATTRIBUTE_MARKER_LINE_NUMBER


def frame_identifier(function: str, file: str, line: int | str, current_line: int) -> str:
    """A frame as pyinstrument records it: identifier, then the line being run."""
    return (
        f"{function}{IDENTIFIER_SEP}{file}{IDENTIFIER_SEP}{line}"
        f"{ATTRIBUTES_SEP}{LINE_NUMBER}{current_line}"
    )


def root_identifier(name: str, kind: str, ident: int) -> str:
    """A synthetic root frame (a thread), with no attributes."""
    return f"{name}{IDENTIFIER_SEP}{kind}{IDENTIFIER_SEP}{ident}"
