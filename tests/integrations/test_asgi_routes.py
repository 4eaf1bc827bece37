"""Route templates of apps laid out as the frameworks' docs teach: routers included in routers,
mounts inside included routers, and apps that route themselves mounted under Starlette."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from obs.asgi import ObservabilityMiddleware
from obs.integrations import _compat
from tests.asgi_client import request
from tests.conftest import access, assert_private_names_exist, count, run_python

APPS = Path(__file__).resolve().parent.parent / "integration" / "apps"


async def plain(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def litestar_items() -> Litestar:
    """A Litestar app that routes itself: ``GET /items/all``."""

    @get("/items/all")
    async def items() -> dict[str, int]:
        return {"items": 0}

    return Litestar([items], logging_config=None)


def _fastapi_includes_by_reference() -> bool:
    """FastAPI 0.116 and later include a router by reference (what ``_compat`` reads); before,
    ``include_router`` copies the router's routes with the prefix applied, and drops its
    mounts."""
    from importlib.metadata import version

    return tuple(int(part) for part in version("fastapi").split(".")[:2]) >= (0, 116)


def test_the_fastapi_private_names_obs_reads_still_exist() -> None:
    from importlib.metadata import version

    names = tuple((n, p) for n, p in _compat.PRIVATE_NAMES if n.startswith("fastapi."))
    assert names, "the included router's _match is read; its name must be checked"
    if _fastapi_includes_by_reference():
        assert_private_names_exist(names, "fastapi", version("fastapi"))
    else:  # nothing to read: the included routes are copies, and obs must see no included router
        api, router = FastAPI(), APIRouter()
        router.add_api_route("/{k}", plain)
        api.include_router(router, prefix="/p")
        assert not any(_compat.is_fastapi_included_router(r) for r in api.router.routes)
        assert "/p/{k}" in [getattr(r, "path", None) for r in api.router.routes]


def test_the_litestar_private_names_obs_reads_still_exist() -> None:
    from importlib.metadata import version

    from litestar._asgi.asgi_router import ASGIRouter

    names = tuple((n, p) for n, p in _compat.PRIVATE_NAMES if n.startswith("litestar."))
    assert names == (("litestar._asgi.asgi_router.ASGIRouter.handle_routing", names[0][1]),)
    # handle_routing is set per router in __init__ (an lru_cache around _handle_routing).
    router = ASGIRouter(litestar_items())
    assert callable(getattr(router, "handle_routing", None)), (
        f"litestar {version('litestar')} no longer has ASGIRouter.handle_routing"
    )


def test_mounts_inside_an_included_router_keep_every_prefix(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    sub = FastAPI()

    @sub.get("/inc/{k}")
    async def sub_item(k: str) -> dict[str, str]:
        return {"k": k}

    sub_router = APIRouter()

    @sub_router.get("/{k}")
    async def sub_routed(k: str) -> dict[str, str]:
        return {"k": k}

    sub.include_router(sub_router, prefix="/viarouter")
    files = tempfile.mkdtemp()
    Path(files, "a.txt").write_text("hello")
    mounts = APIRouter()
    mounts.mount("/star", Starlette(routes=[Route("/s/{x}", plain)]))
    mounts.mount("/fa", sub)
    mounts.mount("/files", StaticFiles(directory=files))
    nested = APIRouter()
    nested.include_router(mounts, prefix="/deeper")
    api = FastAPI()
    api.include_router(mounts, prefix="/p")
    api.include_router(nested, prefix="/n")
    app = ObservabilityMiddleware(api, registry=registry)
    expected = {
        "/p/star/s/1": "/p/star/s/{x}",
        "/p/fa/inc/k1": "/p/fa/inc/{k}",
        "/p/fa/viarouter/k2": "/p/fa/viarouter/{k}",
        "/p/files/a.txt": "/p/files/{path}",
        "/n/deeper/star/s/2": "/n/deeper/star/s/{x}",
        "/n/deeper/fa/viarouter/k3": "/n/deeper/fa/viarouter/{k}",
    }
    if not _fastapi_includes_by_reference():
        # An older FastAPI drops the mounts of an included router: each path is a 404, and
        # obs must not make a template up for it.
        for path in expected:
            assert request(app, path).status == 404, path
        assert [line["http_route"] for line in access(log)] == ["_unmatched"] * len(expected)
        assert count(registry, http_route="_unmatched") == len(expected)
        return
    for path in expected:
        assert request(app, path).status == 200, path
    assert [line["http_route"] for line in access(log)] == list(expected.values())
    for template in expected.values():
        assert count(registry, http_route=template) == 1, template
    assert count(registry, http_route="_unmatched") == 0


def test_an_app_that_routes_itself_keeps_the_template_of_its_mount(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    outer = Starlette(
        routes=[
            Route("/items/all", plain),
            Mount("/ls", app=litestar_items()),
            Mount("/t/{tenant}", routes=[Mount("/ls", app=litestar_items())]),
        ]
    )
    app = ObservabilityMiddleware(outer, registry=registry)
    for path in ("/items/all", "/ls/items/all", "/t/acme/ls/items/all"):
        assert request(app, path).status == 200, path
    assert [line["http_route"] for line in access(log)] == [
        "/items/all",
        "/ls/items/all",
        "/t/{tenant}/ls/items/all",
    ]
    # The mounted app's route is a series of its own, not the top-level route's.
    assert count(registry, http_route="/items/all") == 1


def test_django_mounted_under_starlette_keeps_the_mount_in_its_routes() -> None:
    code = f"""
import asyncio, io, json, os, sys
sys.path.insert(0, {str(APPS)!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "djangoproject.settings"
from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.routing import Mount
import obs
from obs.asgi import ObservabilityMiddleware
from tests.asgi_client import request
out = io.StringIO()
django_app = get_asgi_application()
obs.configure_logging(service_name="t", log_format="json", stream=out)
app = ObservabilityMiddleware(Starlette(routes=[Mount("/dj", app=django_app)]))
print(request(app, "/dj/polls/3/").status, file=sys.stderr)
for line in out.getvalue().splitlines():
    record = json.loads(line)
    if record.get("logger") == "obs.access":
        print(record["http_route"])
"""
    result = run_python(code, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("200"), result.stderr
    assert result.stdout.split() == ["/dj/polls/<int:question_id>/"]


def test_a_litestar_405_is_labelled_with_the_template_of_its_path(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    @get("/users/{user_id:int}")
    async def user(request: LitestarRequest) -> dict[str, int]:  # type: ignore[type-arg]
        # The parameter is read from the request: Litestar >= 2.22 deprecates inferring it.
        return {"user": request.path_params["user_id"]}

    litestar = Litestar([user], logging_config=None)
    outer = Starlette(routes=[Mount("/ls", app=Litestar([user], logging_config=None))])
    app = ObservabilityMiddleware(litestar, registry=registry)
    mounted = ObservabilityMiddleware(outer, registry=registry)
    assert request(app, "/users/7").status == 200
    assert request(app, "/users/7", method="POST").status == 405
    assert request(app, "/users/7/", method="DELETE").status == 405
    assert request(app, "/proxy/users/8", method="POST", root_path="/proxy").status == 405
    assert request(mounted, "/ls/users/9", method="PUT").status == 405
    assert request(app, "/nowhere", method="POST").status == 404
    assert request(app, "/users/not-a-number").status == 404
    assert [line["http_route"] for line in access(log)] == [
        "/users/{user_id}",
        "/users/{user_id}",
        "/users/{user_id}",
        "/users/{user_id}",
        "/ls/users/{user_id}",
        "_unmatched",
        "_unmatched",
    ]
    assert count(registry, http_route="/users/{user_id}", http_response_status_code="405") == 3
    assert count(registry, http_route="/ls/users/{user_id}") == 1
    assert count(registry, http_route="_unmatched") == 2


def test_a_proxys_prefix_stays_out_of_a_mounted_apps_route(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    outer = Starlette(routes=[Mount("/ls", app=litestar_items())])
    app = ObservabilityMiddleware(outer, registry=registry)
    assert request(app, "/proxy/ls/items/all", root_path="/proxy").status == 200
    (line,) = access(log)
    assert line["http_route"] == "/ls/items/all"
