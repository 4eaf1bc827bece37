"""Control characters written as ``\\xNN``: for log lines and for what the commands print.

A terminal obeys escape sequences (CSI, OSC 0 for the title, OSC 52 to write the clipboard) and
a newline forges a line, so text that came from a client, a profiled process or a profile file
passes through :func:`escape_control` before it reaches a console. It sits in the lowest layer
(it imports nothing) so that both :mod:`obs.logs` and :mod:`obs.profiling` use it.
"""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL included: a terminal would obey ESC/BEL sequences taken
# from a path or a user agent, and a newline would forge a log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match[0]):02x}"


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """*text* with control characters written as ``\\xNN`` (newlines kept with
    *keep_newlines*)."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_escape, text)
