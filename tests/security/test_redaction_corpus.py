"""Every leak the issue lists, and the cases that were already masked, in both formats, in
process and through real servers' own lines: not one secret may reach the output."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry
from starlette.datastructures import Headers as StarletteHeaders
from werkzeug.datastructures import Headers as WerkzeugHeaders

import obs
from obs.asgi import ObservabilityMiddleware
from tests.asgi_client import call, http_scope
from tests.conftest import free_port
from tests.integration.servers import serve

APPS = Path(__file__).resolve().parent / "apps"


def secret(n: int) -> str:
    return f"S3CR3T{n:03d}x"


@dataclasses.dataclass
class Login:
    user: str
    password: str


@attrs.define
class ApiClient:
    base_url: str
    api_key: str


def nested(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = leaf
    for _ in range(depth):
        value = {"level": value}
    return value


def raised(message: str) -> BaseException:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


# (what leaked, how it is logged); each case uses its own secrets (by number).
Case = Callable[[Any], None]
CASES: dict[str, Case] = {
    # Already masked before the issue: they must stay masked.
    "password key": lambda log: log.info("login", password=secret(1)),
    "authorization pair": lambda log: log.info("h", headers=[("Authorization", secret(2))]),
    "nested api key": lambda log: log.info("x", cfg={"svc": {"API-Key": secret(3)}}),
    "access_token suffix": lambda log: log.info("x", x_access_token=secret(4)),
    # The leaks the issue lists.
    "camelCase": lambda log: log.info("x", accessToken=secret(5), clientSecret=secret(6)),
    "dotted key": lambda log: log.info("x", **{"x.api.key": secret(7)}),
    "common names": lambda log: log.info(
        "x",
        sessionid=secret(8),
        credentials=secret(9),
        pwd=secret(10),
        passphrase=secret(11),
        csrftoken=secret(12),
        signature=secret(13),
        session=secret(14),
    ),
    "deeper than 8": lambda log: log.info("x", data=nested(30, {"password": secret(15)})),
    "header lists of lists": lambda log: log.info(
        "x", raw=[[b"authorization", secret(16).encode()], ["Cookie", secret(17)]]
    ),
    "starlette headers": lambda log: log.info(
        "x", headers=StarletteHeaders(raw=[(b"authorization", secret(18).encode())])
    ),
    "werkzeug headers": lambda log: log.info(
        "x", headers=WerkzeugHeaders([("Authorization", secret(19)), ("Accept", "*/*")])
    ),
    "dataclass": lambda log: log.info("x", login=Login("ann", secret(20))),
    "attrs": lambda log: log.info("x", client=ApiClient("https://api", secret(21))),
    "url userinfo in a path": lambda log: log.info(
        "fetch", path=f"https://bob:{secret(22)}@db.example/x", dsn=f"postgres://{secret(23)}@h/d"
    ),
    "bracketed query name": lambda log: log.info("q", query=f"a=1&user[password]={secret(24)}"),
    "encoded query name": lambda log: log.info("q", query=f"pass%77ord={secret(25)}"),
    "semicolon query": lambda log: log.info("q", query=f"a=1;token={secret(26)}"),
    "server line": lambda log: log.info(
        f"Error handling request GET /raise?access_token={secret(27)}"
    ),
    "free text pairs": lambda log: log.info(
        f"retry with password={secret(28)}; Authorization: Bearer {secret(29)}"
    ),
    "exception message": lambda log: log.error(
        "failed", exc_info=raised(f"connect failed token={secret(30)} url=https://u:{secret(31)}@h")
    ),
    "bytes keys": lambda log: log.info("x", headers={b"authorization": secret(32).encode()}),
    "mapping proxy": lambda log: log.info(
        "x", env=__import__("types").MappingProxyType({"DB_PASSWORD": secret(33)})
    ),
    "a set of pairs": lambda log: log.info("x", s=frozenset({("token", secret(34))})),
    "object repr": lambda log: log.info("x", obj=raised(f"password={secret(35)}")),
    # The security review's: a secret word anywhere in the key, not only at its end.
    "django and rails form fields": lambda log: log.info(
        "signup",
        form={"password1": secret(36), "new_password2": secret(37)},
        **{"user[password_confirmation]": secret(38)},
    ),
    "confirmations, hashes, one-time codes": lambda log: log.info(
        "x", passwordConfirm=secret(39), password_hash=secret(43), otp_code=secret(44)
    ),
    "every pair of a cookie header in text": lambda log: log.info(
        f"raw headers Cookie: theme=dark; _myapp_sess={secret(45)}; remember={secret(46)}"
    ),
}
STDLIB_CASES: dict[str, Callable[[logging.Logger], None]] = {
    "stdlib message": lambda logger: logger.info("login password=%s", secret(40)),
    "stdlib extra": lambda logger: logger.info("x", extra={"apiKey": secret(41)}),
    "stdlib exception": lambda logger: logger.error(
        "failed", exc_info=raised(f"secret={secret(42)}")
    ),
}
ALL_SECRETS = [secret(n) for n in range(1, 47)]


def leaks(text: str) -> list[str]:
    return [s for s in ALL_SECRETS if s in text]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_secret_of_the_corpus_reaches_a_line(fmt: str, registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format=fmt, stream=out, registry=registry)
    log = structlog.get_logger("corpus")
    for name, case in CASES.items():
        before = out.tell()
        case(log)
        assert out.tell() > before, f"{name}: nothing was logged"
    logger = logging.getLogger("corpus.stdlib")
    for case_stdlib in STDLIB_CASES.values():
        case_stdlib(logger)
    text = out.getvalue()
    assert leaks(text) == [], text
    assert text.count("[REDACTED]") >= len(CASES) + len(STDLIB_CASES)
    assert "ann" in text and "https://api" in text  # what is not secret is still there


async def _raising_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/raise":
        raise ValueError(f"upstream said token={secret(50)}")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_access_line_masks_queries_paths_and_tracebacks(
    fmt: str, registry: CollectorRegistry
) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format=fmt, stream=out, registry=registry)
    app = ObservabilityMiddleware(_raising_app, registry=registry)
    queries = [
        f"user[password]={secret(51)}", f"pass%77ord={secret(52)}", f"a=1;token={secret(53)}",
        f"accessToken={secret(54)}&ok=1",
        f"next=%2Fcb%3Faccess_token%3D{secret(56)}",  # nested in another parameter's value
        f"password1={secret(57)}&code={secret(58)}&sig={secret(59)}",
    ]  # fmt: skip
    for query in queries:
        asyncio.run(call(app, http_scope("/x", query=query.encode())))
    asyncio.run(call(app, http_scope(f"http://bob:{secret(55)}@host/x")))
    exchange = asyncio.run(call(app, http_scope("/raise")))
    assert isinstance(exchange.raised, ValueError)  # the app's exception still propagates
    text = out.getvalue()
    assert [s for s in (secret(n) for n in range(50, 60)) if s in text] == [], text
    assert "ok=1" in text and "upstream said token=[REDACTED]" in text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["json", "console"])
def test_gunicorn_and_uvicorn_lines_hold_no_secret(fmt: str, tmp_path: Path) -> None:
    env = {"OBS_LOG_FORMAT": fmt, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "mp")}
    (tmp_path / "mp").mkdir(mode=0o700)
    port = free_port()
    gunicorn = ["gunicorn", "-c", "python:obs.gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}"]
    with serve([*gunicorn, "leak_wsgi:app"], port, cwd=APPS, env=env) as server:
        response = httpx.get(f"{server.base_url}/raise?access_token={secret(60)}", timeout=10)
        assert response.status_code == 500
    gunicorn_text = server.stdout + server.stderr
    assert "Error handling request" in gunicorn_text  # the server's own line is there...
    assert secret(60) not in gunicorn_text, gunicorn_text[-3000:]  # ...without the token

    port = free_port()
    uvicorn = ["uvicorn", "--port", str(port), "--host", "127.0.0.1", "leak_asgi:app"]
    with serve(uvicorn, port, cwd=APPS, env={"OBS_LOG_FORMAT": fmt}) as server:
        for path in (f"/x?token={secret(61)}", "/raise"):
            httpx.get(server.base_url + path, timeout=10)
    uvicorn_text = server.stdout + server.stderr
    assert "GET /x?token=[REDACTED]" in uvicorn_text  # uvicorn's access line, masked
    assert [s for s in (secret(61), secret(62)) if s in uvicorn_text] == [], uvicorn_text[-3000:]
