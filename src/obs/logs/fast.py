"""The fused access-line fast path: obs's JSON chain in one call for events obs made itself.

:func:`~obs.logs.pipeline.configure_logging` builds a :class:`JsonLine` from the very processors
of the JSON chain it configures; :class:`~obs.logs.emitter.EventEmitter` uses it when it is set.
"""

from __future__ import annotations

import orjson
from structlog.typing import EventDict

from obs.logs._compat import CONTEXT_VARS
from obs.logs.processors import (
    BOUND_KEYS,
    STR_KEYS_OPTIONS,
    AddStandardFields,
    RenderExceptions,
    json_default,
    merge_contextvars,
    render_json,
)
from obs.logs.redaction import RedactSecrets


class JsonLine:
    """The JSON chain (:func:`merge_contextvars`, :class:`AddStandardFields`,
    :class:`~obs.logs.redaction.RedactSecrets`, :class:`RenderExceptions`, :func:`render_json`) in one
    call, for events whose every key the caller vouches for: the same line, about half the cost.

    Every key of the event must be in *trusted*, holding the caller's own scalar values; only
    keys merged from the bound context are then redacted, as the chain would.
    """

    def __init__(
        self, standard: AddStandardFields, redact: RedactSecrets, exceptions: RenderExceptions
    ) -> None:
        self._standard = standard
        self._redact = redact
        self._exceptions = exceptions

    def render(
        self, logger_name: str, method_name: str, event_dict: EventDict, trusted: frozenset[str]
    ) -> bytes:
        untrusted = False
        if CONTEXT_VARS is None:  # pragma: no cover - a structlog that keeps them elsewhere
            event_dict = merge_contextvars(None, method_name, event_dict)
            untrusted = True
        else:
            # The pairs read here while structlog's variables are the same: a call fewer per
            # line (bench/instructions.py: about 300 instructions).
            bound = BOUND_KEYS
            pairs = bound.pairs if bound.size == len(CONTEXT_VARS) else bound.current(CONTEXT_VARS)
            for key, var in pairs:
                value = var.get()
                if value is not Ellipsis and key not in event_dict:
                    event_dict[key] = value
                    untrusted = untrusted or key not in trusted
        self._standard.add(event_dict, method_name, logger_name)
        if "exc_info" in event_dict or "stack_info" in event_dict:
            # Rendered first: the rendered exception is not a trusted key, so its messages
            # are scrubbed by the redaction step below.
            event_dict = self._exceptions(None, method_name, event_dict)
            untrusted = True
        if untrusted:
            event_dict = self._redact.redact_untrusted(event_dict, trusted)
        try:
            # Keys are strings here, so orjson's faster path without OPT_NON_STR_KEYS applies.
            return orjson.dumps(event_dict, default=json_default, option=STR_KEYS_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            return render_json(None, method_name, event_dict)
