"""Section 4: JSON lines per second, each logger writing to its own file.

The same event (a message and two fields) through obs's logger, structlog's JSON set-up,
stdlib logging with python-json-logger, and loguru's ``serialize=True``, each with its usual
file output, in interleaved rounds. The files live in a temporary directory and are checked
to hold one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Batch, Rounds, missing, section_main, timed


def obs_logger(path: Path) -> Callable[[], None]:
    from obs import configure_logging, get_logger

    configure_logging(service_name="bench", log_format="json", stream=path.open("w"))
    log = get_logger("bench")
    return lambda: log.info("user logged in", user_id=42, path="/users/42")


def structlog_logger(path: Path) -> Callable[[], None]:
    import structlog

    log = structlog.wrap_logger(
        structlog.WriteLogger(path.open("w")),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    return lambda: log.info("user logged in", user_id=42, path="/users/42")


def stdlib_json_logger(path: Path) -> Callable[[], None]:
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("bench.stdlib")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    extra = {"user_id": 42, "path": "/users/42"}
    return lambda: log.info("user logged in", extra=extra)


def loguru_logger(path: Path) -> Callable[[], None]:
    from loguru import logger

    logger.remove()
    logger.add(path, serialize=True, level="INFO")
    return lambda: logger.info("user logged in", user_id=42, path="/users/42")


LOGGERS: dict[str, tuple[Callable[[Path], Callable[[], None]], str]] = {
    "obs": (obs_logger, "obs"),
    "structlog (JSONRenderer)": (structlog_logger, "structlog"),
    "stdlib + python-json-logger": (stdlib_json_logger, "pythonjsonlogger"),
    "loguru (serialize)": (loguru_logger, "loguru"),
}


def _loop(emit: Callable[[], None]) -> Batch:
    def run(n: int) -> None:
        for _ in range(n):
            emit()

    return timed(run)


def run(quick: bool) -> dict[str, Any]:
    n, rounds = (2000, 3) if quick else (20000, 9)
    result: dict[str, Any] = {"n_per_round": n, "rounds": rounds, "skipped": {}, "loggers": {}}
    with tempfile.TemporaryDirectory(prefix="obs-bench-logs-") as tmp:
        batches: dict[str, Batch] = {}
        files: dict[str, Path] = {}
        for name, (build, module) in LOGGERS.items():
            reason = missing(module)
            if reason is not None:
                result["skipped"][name] = reason
                continue
            files[name] = Path(tmp) / f"{module}.log"
            batches[name] = _loop(build(files[name]))
        measured = Rounds()
        measured.run(batches, n=n, rounds=rounds, scale=1.0)
        for name in batches:
            lines = files[name].read_text().splitlines()
            json.loads(lines[-1])  # each line is one JSON object
            per_line = measured.per_round[name]  # seconds per line, per round
            measured.per_round[name] = [1.0 / s for s in per_line]
            row = measured.figure(name)
            result["loggers"][name] = {
                "lines_per_second": {k: v if k == "rounds" else round(v) for k, v in row.items()},
                "bytes_per_line": round(files[name].stat().st_size / max(len(lines), 1)),
            }
    return result


if __name__ == "__main__":
    section_main(run)
