from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import structlog
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse


def question(request: HttpRequest, question_id: int) -> JsonResponse:
    return JsonResponse({"question_id": question_id})


def user(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse({"user": name})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for i in range(5):
            time.sleep(0.1)
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def stream_fails(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"partial\n"
        raise RuntimeError("midway")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def astream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(2):
            structlog.get_logger("views").info("async chunk", i=i)
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


LONG_CHUNK = b"x" * 65536


def longstream(request: HttpRequest) -> StreamingHttpResponse:
    """200 chunks of 64 KiB, 10 ms apart: a client can hang up halfway."""

    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            time.sleep(0.01)
            yield LONG_CHUNK

    return StreamingHttpResponse(chunks(), content_type="application/octet-stream")
