"""One-request profiles through the real ASGI middleware."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import obs
from obs.asgi import ObservabilityMiddleware
from obs.config import Settings

TOKEN = "let-me-profile-0123456789"


def hot_async_function() -> int:
    total = 0
    for i in range(300_000):
        total += i * i % 7
    return total


async def async_route(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(hot_async_function()))


def hot_sync_function() -> int:
    return sum(i * i % 11 for i in range(300_000))


def sync_route(request: Request) -> PlainTextResponse:  # runs in Starlette's thread pool
    return PlainTextResponse(str(hot_sync_function()))


def make(tmp_path: Path, registry: CollectorRegistry) -> ObservabilityMiddleware:
    settings = Settings.from_env(
        {}, service_name="p", profile_token=TOKEN, profile_dir=str(tmp_path / "profiles")
    )
    inner = Starlette(routes=[Route("/async", async_route), Route("/sync", sync_route)])
    return ObservabilityMiddleware(inner, registry=registry, settings=settings)


async def get(app: Any, path: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"x-obs-profile": token}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path, headers=headers)


def test_right_token_profiles_async_and_sync_handlers(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    app = make(tmp_path, registry)
    for path, hot in (("/async", "hot_async_function"), ("/sync", "hot_sync_function")):
        response = asyncio.run(get(app, path, TOKEN))
        profile_id = response.headers["x-obs-profile-id"]
        assert profile_id.startswith(response.headers["x-request-id"] + "-")  # + a random part
        html = tmp_path / "profiles" / f"{profile_id}.html"
        speedscope = tmp_path / "profiles" / f"{profile_id}.speedscope.json"
        assert hot in html.read_text() and hot in speedscope.read_text()
        assert html.stat().st_mode & 0o777 == 0o600
    access = [json.loads(line) for line in out.getvalue().splitlines() if '"obs.access"' in line]
    assert [Path(a["profile"]).suffix for a in access] == [".html", ".html"]
    assert TOKEN not in out.getvalue()


def test_wrong_or_missing_token_is_a_normal_request(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    app = make(tmp_path, registry)
    for token in (None, "wrong", TOKEN + "x", ""):
        response = asyncio.run(get(app, "/async", token))
        assert response.status_code == 200 and "x-obs-profile-id" not in response.headers
    assert not (tmp_path / "profiles").exists() or not any((tmp_path / "profiles").iterdir())


def test_concurrent_profiled_requests_get_one_profile(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    app = make(tmp_path, registry)

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(*(get(app, "/async", TOKEN) for _ in range(3))))

    responses = asyncio.run(both())
    assert all(r.status_code == 200 for r in responses)
    profiled = [r for r in responses if "x-obs-profile-id" in r.headers]
    assert len(profiled) >= 1
    htmls = sorted((tmp_path / "profiles").glob("*.html"))
    assert [h.stem for h in htmls] == sorted(r.headers["x-obs-profile-id"] for r in profiled)


def test_profiling_off_without_a_token(tmp_path: Path, registry: CollectorRegistry) -> None:
    app = ObservabilityMiddleware(
        Starlette(routes=[Route("/async", async_route)]),
        registry=registry,
        settings=Settings.from_env({}, profile_dir=str(tmp_path)),
    )
    assert app.observer.profiler is None
    response = asyncio.run(get(app, "/async", TOKEN))
    assert "x-obs-profile-id" not in response.headers
