"""THE table of the conformance suite: request -> what obs must record.

Each row is one request to one layout (an app in ``apps/``, laid out as its framework's docs
teach). Adding a framework layout is adding an app and rows here; the test module runs every
row of every layout through every server of :data:`SERVERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What the client does: a whole request, or hang up once the response headers arrived.
REQUEST, HANG_UP = "request", "hang up"


@dataclass(frozen=True)
class Row:
    layout: str  # the module in apps/ (its ``app``)
    path: str
    route: str  # expected http_route
    status: int  # expected status, metrics and access line alike
    error_type: str = ""
    raised: bool = False  # counted in http_server_exceptions_total, traceback in the line
    headers: tuple[tuple[str, str], ...] = ()
    action: str = REQUEST
    #: The app logs one line ``handler`` while it runs (carrying *route*, or no route when
    #: the request is never routed).
    logs: bool = False
    #: The response says ``Connection: close``: obs answered the 500 of an app that raised
    #: before responding, and the server closes that connection (HTTP/1).
    closes: bool = False


FASTAPI, STARLETTE, LITESTAR, DJANGO, PLAIN = (
    "conformance_fastapi",
    "conformance_starlette",
    "conformance_litestar",
    "conformance_django.asgi",
    "conformance_plain",
)
TOKEN = (("x-token", "ok"),)

ROWS: tuple[Row, ...] = (
    # FastAPI: one router under two prefixes, nested routers with their own prefixes.
    Row(FASTAPI, "/users/3", "/users/{user_id}", 200, logs=True),
    Row(FASTAPI, "/admins/4", "/admins/{user_id}", 200, logs=True),
    Row(FASTAPI, "/v1/orders/3", "/v1/orders/{oid}", 200, logs=True),
    Row(FASTAPI, "/v1/orders/x", "/v1/orders/{oid}", 422),  # validation error
    Row(FASTAPI, "/secure", "/secure", 403),  # a dependency raising HTTPException
    Row(FASTAPI, "/secure", "/secure", 200, headers=TOKEN),
    Row(FASTAPI, "/teapot", "/teapot", 418),  # a custom exception handler
    Row(FASTAPI, "/boom", "/boom", 500, "RuntimeError", raised=True),
    Row(FASTAPI, "/sub/things/7", "/sub/things/{tid}", 200, logs=True),  # mount() of a sub-app
    Row(FASTAPI, "/static/hello.txt", "/static/{path}", 200),
    Row(FASTAPI, "/background", "/background", 200, logs=True),
    Row(FASTAPI, "/stream", "/stream", 200),
    Row(FASTAPI, "/nowhere", "_unmatched", 404),
    Row(FASTAPI, "/slow-stream", "/slow-stream", 499, action=HANG_UP),
    # Starlette: Mount with path parameters (never the raw value), nested mounts, Host.
    Row(STARLETTE, "/items/1", "/items/{item_id}", 200, logs=True),
    *(
        Row(STARLETTE, f"/t/tenant-{i}/items", "/t/{tenant}/items", 200, logs=True)
        for i in range(5)
    ),
    Row(STARLETTE, "/t/acme/items/9", "/t/{tenant}/items/{item_id:int}", 200, logs=True),
    Row(
        STARLETTE,
        "/t/acme/projects/p1/files/a.txt",
        "/t/{tenant}/projects/{project}/files/{name}",
        200,
        logs=True,
    ),
    Row(STARLETTE, "/h/5", "/h/{z}", 200, headers=(("host", "api.example.test"),), logs=True),
    Row(STARLETTE, "/t/acme/nothing", "_unmatched", 404),
    Row(STARLETTE, "/boom", "/boom", 500, "RuntimeError", raised=True),
    Row(STARLETTE, "/slow-stream", "/slow-stream", 499, action=HANG_UP),
    # Litestar: Controllers, Routers with path parameters, guards, exception handlers.
    Row(LITESTAR, "/orders/5", "/orders/{oid}", 200, logs=True),
    Row(LITESTAR, "/t/acme/items", "/t/{tenant}/items", 200, logs=True),
    Row(LITESTAR, "/t/other/items", "/t/{tenant}/items", 200, logs=True),
    Row(LITESTAR, "/secure", "/secure", 401),  # a guard
    Row(LITESTAR, "/secure", "/secure", 200, headers=TOKEN),
    Row(LITESTAR, "/teapot", "/teapot", 418),  # an exception handler
    Row(LITESTAR, "/boom", "/boom", 500, "RuntimeError", raised=True),
    Row(LITESTAR, "/nowhere", "_unmatched", 404),
    Row(LITESTAR, "/slow-stream", "/slow-stream", 499, action=HANG_UP),
    # Django under its ASGI handler, inside obs.asgi, with obs.django's middleware: once.
    Row(DJANGO, "/polls/3/", "/polls/<int:question_id>/", 200, logs=True),
    Row(DJANGO, "/polls/4/", "/polls/<int:question_id>/", 200, logs=True),
    Row(DJANGO, "/boom", "/boom", 500, "RuntimeError", raised=True),
    Row(DJANGO, "/nowhere", "_unmatched", 404),
    # Plain ASGI, misbehaviours included: what is recorded is what the client got.
    Row(PLAIN, "/users/1", "/users/{id}", 200, logs=True),
    Row(PLAIN, "/anything", "_unmatched", 200, logs=True),
    Row(PLAIN, "/no-response", "_unmatched", 500, "500"),
    Row(PLAIN, "/two-starts", "_unmatched", 200),
    Row(PLAIN, "/cancelled", "_unmatched", 500, "CancelledError", raised=True, closes=True),
    Row(PLAIN, "/boom", "_unmatched", 500, "RuntimeError", raised=True, closes=True),
    Row(PLAIN, "/slow-stream", "_unmatched", 499, action=HANG_UP),
)

LAYOUTS: tuple[str, ...] = tuple(dict.fromkeys(row.layout for row in ROWS))


def server_argv(server: str, layout: str, port: int) -> list[str]:
    """``python -m`` arguments that serve *layout* with *server* on 127.0.0.1:*port*, as
    deployed: no access-log flag (obs switches the server's own off)."""
    target = f"{layout}:app"
    bind = f"127.0.0.1:{port}"
    if server.startswith("uvicorn-"):
        http = server.removeprefix("uvicorn-")
        return ["uvicorn", target, "--host", "127.0.0.1", "--port", str(port), "--http", http]
    if server == "hypercorn":
        return ["hypercorn", "--bind", bind, target]
    if server == "gunicorn-uvicorn":
        worker = "uvicorn_worker.UvicornWorker"
        return ["gunicorn", "--bind", bind, "--workers", "1", "--worker-class", worker, target]
    raise ValueError(f"unknown server {server!r}")


SERVERS: tuple[str, ...] = ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "gunicorn-uvicorn")
