"""The request profiler under a real framework, driven the way the middleware drives it.

``profiling_middleware`` below is a stand-in for obs's ASGI adapter: it calls ``start`` in the
request's task before the app runs and ``stop`` in the same task once the response is complete.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from obs.profiling.request import RequestProfiler
from tests.profiling.conftest import speedscope_frame_names, validate_speedscope
from tests.profiling.test_request import TOKEN, hot_async_handler_work, hot_sync_handler_work

Scope = dict[str, Any]


def profiling_middleware(app: Any, profiler: RequestProfiler) -> Any:
    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not profiler.enabled:
            await app(scope, receive, send)
            return
        token = dict(scope["headers"]).get(b"x-obs-profile")
        rid = dict(scope["headers"]).get(b"x-request-id", b"rid").decode()
        active = profiler.start(token.decode("latin-1") if token else None, rid)

        async def send_wrapper(message: dict[str, Any]) -> None:
            if active is not None and message["type"] == "http.response.start":
                header = (b"x-obs-profile-id", active.profile_id.encode())
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            if active is not None:
                active.stop()

    return middleware


def sync_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(hot_sync_handler_work()))


async def async_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(await hot_async_handler_work()))


@pytest.fixture
def profiler(tmp_path: Path) -> RequestProfiler:
    return RequestProfiler(TOKEN, tmp_path)


@pytest.fixture
def client(profiler: RequestProfiler) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/sync", sync_endpoint), Route("/async", async_endpoint)])
    transport = httpx.ASGITransport(app=profiling_middleware(app, profiler))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    ("path", "hot"),
    [("/sync", "hot_sync_handler_work"), ("/async", "hot_async_handler_work")],
)
def test_profiled_request_names_the_handlers_hot_function(
    client: httpx.AsyncClient, profiler: RequestProfiler, path: str, hot: str
) -> None:
    async def call() -> httpx.Response:
        async with client:
            return await client.get(path, headers={"X-Obs-Profile": TOKEN, "X-Request-Id": "r-1"})

    response = asyncio.run(call())
    assert response.status_code == 200 and int(response.text) > 0
    profile_id = response.headers["x-obs-profile-id"]
    assert profile_id.startswith("r-1-")  # the request id and a random part
    names = speedscope_frame_names(
        validate_speedscope(profiler.directory / f"{profile_id}.speedscope.json")
    )
    assert hot in names
    assert (profiler.directory / f"{profile_id}.html").exists()


def test_wrong_or_missing_token_is_a_normal_request(
    client: httpx.AsyncClient, profiler: RequestProfiler
) -> None:
    async def calls() -> list[httpx.Response]:
        async with client:
            return [
                await client.get("/sync"),
                await client.get("/async", headers={"X-Obs-Profile": "guess"}),
            ]

    for response in asyncio.run(calls()):
        assert response.status_code == 200 and int(response.text) > 0
        assert "x-obs-profile-id" not in response.headers
    assert list(profiler.directory.iterdir()) == []


def test_concurrent_profiled_requests(client: httpx.AsyncClient, profiler: RequestProfiler) -> None:
    async def calls() -> list[httpx.Response]:
        async with client:
            return list(
                await asyncio.gather(
                    *(
                        client.get("/async", headers={"X-Obs-Profile": TOKEN, "X-Request-Id": rid})
                        for rid in ("a", "b", "c")
                    )
                )
            )

    responses = asyncio.run(calls())
    assert all(r.status_code == 200 and int(r.text) > 0 for r in responses)
    profiled = [r.headers["x-obs-profile-id"] for r in responses if "x-obs-profile-id" in r.headers]
    assert len(profiled) >= 1
    for pid in profiled:  # every profile written is whole and valid
        document = json.loads((profiler.directory / f"{pid}.speedscope.json").read_text())
        validate_speedscope(json.dumps(document))
        assert "hot_async_handler_work" in speedscope_frame_names(document)
