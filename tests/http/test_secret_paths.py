"""Path segments a route template names as secrets are masked in the access line, for each
framework's template syntax, through the real middleware and the frameworks' test clients
(Django's: ``tests/integrations/test_django.py``, which owns the Django settings)."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from flask import Blueprint, Flask
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from obs.asgi import ObservabilityMiddleware
from obs.config import Settings
from obs.http.access_line import AccessLog
from obs.http.secret_paths import secret_path_mask
from obs.integrations.flask import instrument
from obs.logs.redaction import MASK, RedactSecrets
from tests.conftest import access

SECRET = "S3CR3TVALUE"
is_secret = RedactSecrets().is_secret

# (template, path served, path logged)
TEMPLATES = [
    ("/reset/{token}", f"/reset/{SECRET}", f"/reset/{MASK}"),  # Starlette, FastAPI
    ("/api/{api_key}/items", f"/api/{SECRET}/items", f"/api/{MASK}/items"),
    ("/api/{api_key:str}/items", f"/api/{SECRET}/items", f"/api/{MASK}/items"),  # Litestar
    ("/reset/<token>", f"/reset/{SECRET}", f"/reset/{MASK}"),  # Flask
    ("/reset/<string(length=11):token>", f"/reset/{SECRET}", f"/reset/{MASK}"),
    ("/reset/<uidb64>/<token>/", f"/reset/MQ/{SECRET}/", f"/reset/MQ/{MASK}/"),  # Django auth
    ("/s/<str:session_id>/x", f"/s/{SECRET}/x", f"/s/{MASK}/x"),
    ("/f/{token}.{ext}", f"/f/{SECRET}.json", f"/f/{MASK}"),  # the segment, extension too
    ("/dl/{secret_path:path}", f"/dl/{SECRET}/a/b", f"/dl/{MASK}"),  # several segments
    ("/dl/<path:secret>", f"/dl/{SECRET}/a", f"/dl/{MASK}"),
    ("/t/{tenant}/reset/{token}", f"/t/acme/reset/{SECRET}", f"/t/acme/reset/{MASK}"),
    ("/reset/{token}", f"/root/reset/{SECRET}", f"/root/reset/{MASK}"),  # a proxy's prefix
    ("/reset/{token}", f"/elsewhere/{SECRET}/x", MASK),  # does not match: all of it
]


@pytest.mark.parametrize(("template", "served", "logged"), TEMPLATES)
def test_secret_parameters_of_each_template_syntax_are_masked(
    template: str, served: str, logged: str
) -> None:
    mask = secret_path_mask(template, is_secret, MASK)
    assert mask is not None
    assert mask(served) == logged


@pytest.mark.parametrize(
    "template",
    ["/users/{user_id}", "/items/<int:item_id>", "/codes/{code}", "/keys/<key>", "/static/x.css"],
)
def test_templates_without_secret_parameters_have_no_mask(template: str) -> None:
    assert secret_path_mask(template, is_secret, MASK) is None


class CountingRedactor(RedactSecrets):
    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []

    def is_secret(self, key: Any) -> bool:
        self.checked.append(key)
        return super().is_secret(key)


def finished(path: str) -> Any:
    fields = ["query", "client", "user_agent", "trace_id", "profile_path", "request_id"]
    fields.append("exception")
    return SimpleNamespace(
        path=path, status=200, raw_method="GET", bytes_in=0, bytes_out=2, error_type="",
        **dict.fromkeys(fields),
    )  # fmt: skip


def test_each_template_is_parsed_once(log: io.StringIO) -> None:
    redactor = CountingRedactor()
    access_log = AccessLog(redactor, frozenset(), 1.0)
    for i in range(3):
        access_log.write(finished(f"/users/{i}"), "/users/{user_id}", 0.001)
        access_log.write(finished(f"/reset/{SECRET}{i}"), "/reset/{token}", 0.001)
        access_log.write(finished("/nowhere"), "_unmatched", 0.001)
    assert redactor.checked == ["user_id", "token"]  # once per template, not per request
    assert [line["path"] for line in access(log)][:3] == ["/users/0", f"/reset/{MASK}", "/nowhere"]
    assert SECRET not in log.getvalue()


def served(log: io.StringIO) -> list[tuple[str, str]]:
    return [(line["http_route"], line["path"]) for line in access(log)]


def settings() -> Settings:
    return Settings.from_env({})


def get(app: Any, *urls: str) -> list[int]:
    """The statuses of GET *urls*, through httpx's ASGI transport (FastAPI's async testing)."""

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.get(url)).status_code for url in urls]

    return asyncio.run(run())


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_starlette_routes_and_mounts(registry: CollectorRegistry, log: io.StringIO) -> None:
    inner = Starlette(
        routes=[
            Route("/reset/{token}", ok),
            Route("/users/{user_id}", ok),
            Mount("/t/{tenant}", routes=[Route("/keys/{api_key:str}", ok)]),
        ]
    )
    app = ObservabilityMiddleware(inner, registry=registry, settings=settings())
    assert get(app, f"/reset/{SECRET}", "/users/42", f"/t/acme/keys/{SECRET}") == [200] * 3
    assert served(log) == [
        ("/reset/{token}", f"/reset/{MASK}"),
        ("/users/{user_id}", "/users/42"),
        ("/t/{tenant}/keys/{api_key:str}", f"/t/acme/keys/{MASK}"),
    ]
    assert SECRET not in str(access(log))  # (the test client's own lines name the URL)


def test_fastapi_routers_with_prefixes(registry: CollectorRegistry, log: io.StringIO) -> None:
    api = FastAPI()
    router = APIRouter(prefix="/api/{api_key}")

    @router.get("/items/{item_id}")
    async def items(api_key: str, item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @api.get("/reset/{token}")
    async def reset(token: str) -> dict[str, bool]:
        return {"ok": True}

    api.include_router(router)
    app = ObservabilityMiddleware(api, registry=registry, settings=settings())
    assert get(app, f"/api/{SECRET}/items/7", f"/reset/{SECRET}?next=/x") == [200, 200]
    assert served(log) == [
        ("/api/{api_key}/items/{item_id}", f"/api/{MASK}/items/7"),
        ("/reset/{token}", f"/reset/{MASK}"),
    ]
    assert SECRET not in str(access(log))  # (the test client's own lines name the URL)


def test_flask_rules_and_blueprints(registry: CollectorRegistry, log: io.StringIO) -> None:
    app = Flask(__name__)
    app.add_url_rule("/reset/<token>", "reset", lambda token: "ok")
    app.add_url_rule("/users/<int:user_id>", "user", lambda user_id: "ok")
    keys = Blueprint("keys", __name__, url_prefix="/keys")
    keys.add_url_rule("/<string:api_key>/items", "items", lambda api_key: "ok")
    app.register_blueprint(keys)
    instrument(app, registry=registry, settings=settings(), metrics_path=None)
    client = app.test_client()
    for url in (f"/reset/{SECRET}", "/users/42", f"/keys/{SECRET}/items"):
        assert client.get(url).status_code == 200
    assert served(log) == [
        ("/reset/<token>", f"/reset/{MASK}"),
        ("/users/<int:user_id>", "/users/42"),
        ("/keys/<string:api_key>/items", f"/keys/{MASK}/items"),
    ]
    assert SECRET not in log.getvalue()
