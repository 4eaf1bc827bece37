"""obs's own events (the access line) straight through the configured chain."""

from __future__ import annotations

from typing import Any

import structlog

from obs.logs.pipeline import SinkLogger
from obs.logs.redaction import RedactSecrets
from obs.logs.state import STATE


class EventEmitter:
    """Runs obs's own events straight through the configured chain, skipping structlog's bound
    logger: the same processors and sink as every other line, a few microseconds cheaper.

    For the access log. Every key of an emitted event must be one of *keys*, holding a value
    obs made itself (a scalar, secrets already masked), so redaction checks only what the bound
    context adds; with the JSON chain the line is rendered in one call (:class:`JsonLine`).
    """

    def __init__(self, name: str, keys: frozenset[str]) -> None:
        self.name = name
        self.keys = keys
        self.logger = SinkLogger(name)

    def emit(self, method_name: str, level: int, event_dict: dict[str, Any]) -> None:
        """Log *event_dict* at *level* (``method_name`` is the level's name)."""
        if not STATE.configured:
            self._through_structlog(method_name, event_dict)
            return
        if level < STATE.min_level:
            return
        json_line = STATE.json_line
        if json_line is not None:
            STATE.sink.write(json_line.render(self.name, method_name, event_dict, self.keys))
            return
        rendered: Any = event_dict
        logger = self.logger
        try:
            for processor in STATE.processors:
                if type(processor) is RedactSecrets:
                    rendered = processor.redact_untrusted(rendered, self.keys)
                else:
                    rendered = processor(logger, method_name, rendered)
        except structlog.DropEvent:
            return
        STATE.sink.write(rendered)

    def _through_structlog(self, method_name: str, event_dict: dict[str, Any]) -> None:
        """Without ``configure_logging()``: hand the event to structlog as configured (the app's
        own processors and logger, or structlog's defaults), so the line is never lost."""
        fields = dict(event_dict)
        event = fields.pop("event")
        exception = fields.pop("exc_info", None)
        if exception is not None:
            fields["exc_info"] = exception
        getattr(structlog.get_logger(self.name), method_name)(event, **fields)
