from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

from obs import configure_logging, get_logger
from obs.exceptions import ConfigError
from obs.logs.pipeline import resolve_format
from obs.logs.redaction import MASK

COMMON_KEYS = {"timestamp", "level", "logger", "event", "service"}


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def configure(stream: io.StringIO, registry: CollectorRegistry | None = None, **kw: Any) -> None:
    configure_logging(service_name="svc", log_format="json", stream=stream, registry=registry, **kw)


def test_structlog_and_stdlib_share_one_json_format(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    get_logger("app.orders").info("order placed", order_id=7)
    logging.getLogger("thirdparty.lib").warning("disk at %d%%", 91)
    first, second = lines(out)
    assert first.keys() >= COMMON_KEYS and second.keys() >= COMMON_KEYS
    assert first["logger"] == "app.orders" and first["order_id"] == 7
    assert first["level"] == "info"
    assert second == second | {
        "logger": "thirdparty.lib",
        "event": "disk at 91%",
        "level": "warning",
    }
    assert first["service"] == second["service"] == "svc"
    assert first["timestamp"].endswith("Z")


def test_contextvars_reach_both_kinds_of_logger(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    get_logger("a").info("one")
    logging.getLogger("b").error("two")
    assert [line["request_id"] for line in lines(out)] == ["r-1", "r-1"]


def test_stdlib_extra_fields_are_kept(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    logging.getLogger("x").info("hello", extra={"user_id": 3})
    assert lines(out)[0]["user_id"] == 3


def test_exceptions_are_structured_in_json(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("a").exception("lookup failed")
        logging.getLogger("b").exception("also failed")
    for line in lines(out):
        (exc,) = line["exception"]
        assert exc["exc_type"] == "KeyError"
        assert exc["exc_value"] == "'missing'"
        assert exc["frames"][-1]["name"] == "test_exceptions_are_structured_in_json"
        # Locals could carry secrets. structlog 24.1 writes "locals": null when they are
        # off; 26.1 leaves the key out.
        assert exc["frames"][-1].get("locals") is None


def test_console_format_renders_readable_traceback(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure_logging(service_name="svc", log_format="console", stream=out, registry=registry)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        get_logger("a").exception("boom")
    text = out.getvalue()
    assert "boom" in text and "ZeroDivisionError" in text and "Traceback" in text
    assert not text.lstrip().startswith("{")


def test_secrets_are_masked_in_output(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    get_logger("a").info("call", headers={"Authorization": "Bearer s3cr3t"}, password="pw")
    logging.getLogger("b").info("call", extra={"api_key": "k-9"})
    text = out.getvalue()
    assert "s3cr3t" not in text and "k-9" not in text and '"pw"' not in text
    assert lines(out)[0]["headers"]["Authorization"] == MASK


def test_level_filters_both_pipelines(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry, level="warning")
    get_logger("a").info("hidden")
    logging.getLogger("b").info("hidden too")
    get_logger("a").warning("shown")
    assert [line["event"] for line in lines(out)] == ["shown"]


def test_configuring_twice_duplicates_nothing(registry: CollectorRegistry) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure(first, registry)
    configure(second, registry)
    logging.getLogger("x").warning("once")
    get_logger("y").warning("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 2
    assert len(logging.getLogger().handlers) == 1


def test_cached_logger_follows_reconfiguration(registry: CollectorRegistry) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure(first, registry)
    log = get_logger("kept")
    log.info("a")
    configure(second, registry, redact_keys=["order_id"])
    log.info("b", order_id=5)
    assert [line["event"] for line in lines(first)] == ["a"]
    assert lines(second)[0]["order_id"] == MASK


def test_log_events_are_counted_by_level(registry: CollectorRegistry) -> None:
    configure(io.StringIO(), registry)
    get_logger("a").info("x")
    get_logger("a").error("y")
    logging.getLogger("b").error("z")
    assert registry.get_sample_value("obs_log_events_total", {"level": "error"}) == 2
    assert registry.get_sample_value("obs_log_events_total", {"level": "info"}) == 1


def test_server_loggers_are_routed_through_obs(registry: CollectorRegistry) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_error.propagate = False
    out = io.StringIO()
    configure(out, registry)
    uvicorn_error.info("Started server process [1]")
    assert lines(out)[0]["logger"] == "uvicorn.error"
    assert uvicorn_error.handlers == []


def test_server_loggers_sharing_one_handler_list_both_reach_obs(
    registry: CollectorRegistry,
) -> None:
    """gunicorn's uvicorn worker hands gunicorn.error's handler list (the list itself) to
    uvicorn.error, with propagation off: both must still reach obs (an app's tracebacks were
    printed raw by the interpreter's last-resort handler)."""
    gunicorn_error, uvicorn_error = map(logging.getLogger, ("gunicorn.error", "uvicorn.error"))
    gunicorn_error.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_error.handlers = gunicorn_error.handlers
    gunicorn_error.propagate = uvicorn_error.propagate = False
    out = io.StringIO()
    configure(out, registry)
    uvicorn_error.error("Exception in ASGI application")
    gunicorn_error.info("Booting worker with pid: 1")
    assert [(r["logger"], r["event"]) for r in lines(out)] == [
        ("uvicorn.error", "Exception in ASGI application"),
        ("gunicorn.error", "Booting worker with pid: 1"),
    ]


def test_unserialisable_values_do_not_break_logging(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    get_logger("a").info("odd", obj=object(), big=2**80, s={"b", "a"}, surrogate="\ud800")
    (line,) = lines(out)
    assert line["obj"].startswith("<object object")
    assert line["big"] == 2**80


def test_invalid_format_raises_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="OBS_LOG_FORMAT='xml' is invalid"):
        configure_logging()


def test_auto_format_picks_console_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"


def test_console_handlers_set_up_before_are_taken_over_and_others_kept(
    registry: CollectorRegistry, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging.config

    # Django-style LOGGING, applied before configure_logging (settings are read first).
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
                "errors": {"class": "logging.StreamHandler"},  # stderr
                "file": {"class": "logging.FileHandler", "filename": str(tmp_path / "app.log")},
            },
            "loggers": {
                "djangoish": {"handlers": ["console", "file"], "level": "INFO"},
                "djangoish.server": {"handlers": ["errors"], "propagate": False},
            },
        }
    )
    out = io.StringIO()
    try:
        configure(out, registry)
        logging.getLogger("djangoish").info("once")
        logging.getLogger("djangoish.server").info("server line")
        assert [line["event"] for line in lines(out)] == ["once", "server line"]
        captured = capsys.readouterr()
        assert "once" not in captured.out and "server line" not in captured.err
        assert "once" in (tmp_path / "app.log").read_text()  # a file handler stays
    finally:
        for name in ("djangoish", "djangoish.server"):
            for handler in list(logging.getLogger(name).handlers):
                logging.getLogger(name).removeHandler(handler)
                handler.close()


def test_flasks_default_handler_is_taken_over(registry: CollectorRegistry) -> None:
    flask = pytest.importorskip("flask")
    from flask.logging import default_handler

    root = logging.getLogger()
    for handler in list(root.handlers):  # pytest's capture handler: a bare root, as in an app
        root.removeHandler(handler)
    app = flask.Flask("touched_before")
    app.logger.info("touched before configure_logging")  # adds Flask's default handler
    assert default_handler in app.logger.handlers
    out = io.StringIO()
    configure(out, registry)
    assert default_handler not in app.logger.handlers
    with app.app_context():
        app.logger.warning("after")
    assert [line["event"] for line in lines(out)] == ["after"]


def test_stdlib_extras_cannot_replace_the_message_or_obs_fields(
    registry: CollectorRegistry,
) -> None:
    out = io.StringIO()
    configure(out, registry)
    legacy = logging.getLogger("legacy")
    legacy.warning("payment failed for order %s", 42, extra={"event": "payment"})
    legacy.warning(
        "disk", extra={"logger": "obs.access", "service": "other", "timestamp": "1970", "level": 1}
    )
    first, second = lines(out)
    assert first["event"] == "payment failed for order 42"
    assert first["event_field"] == "payment"
    assert (second["logger"], second["service"], second["level"]) == ("legacy", "svc", "warning")
    assert second["logger_field"] == "obs.access" and second["service_field"] == "other"
    assert second["timestamp_field"] == "1970" and second["level_field"] == 1


def test_a_stdlib_level_number_is_accepted(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    settings = configure_logging(
        log_format="json", stream=out, registry=registry, level=logging.DEBUG
    )
    assert settings.log_level == "debug"
    get_logger("n").debug("shown")
    assert lines(out)[0]["event"] == "shown"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"redact_keys": "ssn"}, "redact_keys=['ssn']"),
        ({"service_name": ""}, "service_name=''"),
        ({"service_name": "  "}, "service_name='  '"),
        ({"stream": "stdout"}, "cannot be written to"),
        ({"level": 2.5}, "level=2.5 is invalid"),
    ],
)
def test_arguments_that_could_only_fail_later_are_refused(
    arguments: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        configure_logging(log_format="json", **arguments)
