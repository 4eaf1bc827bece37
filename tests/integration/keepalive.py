"""How often a keep-alive client's request fails right after an app's unhandled exception.

A server closes the connection of a request that raised. When the 500 does not say
``Connection: close``, the client reuses the connection and its next request can get a reset.
:func:`resets` counts those failures through one real server; ``test_keepalive.py`` asserts
none under obs, and this module, run as a script, prints the figures of the CHANGELOG:

    .venv/bin/python -m tests.integration.keepalive [PAIRS]
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conformance.scenarios import server_argv
from tests.conftest import free_port
from tests.integration.servers import serve

TESTS = Path(__file__).resolve().parents[1]
ASGI_APPS = TESTS / "conformance" / "apps"
WSGI_APPS = TESTS / "conformance" / "wsgi" / "apps"

#: Apps without obs, for the baseline: a Starlette app whose handler raises (Starlette sends
#: its 500, then re-raises) and a plain WSGI app that raises before ``start_response``.
BARE_STARLETTE = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def boom(request):
    raise RuntimeError("boom")

async def ok(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/boom", boom), Route("/", ok), Route("/metrics", ok)])
"""
BARE_WSGI = """
def app(environ, start_response):
    if environ["PATH_INFO"] == "/early":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # with {port} and {target}
    target: str
    cwd: Path | None  # None: the bare apps' temporary directory
    crash: str  # the path that raises


def _gunicorn(*worker: str) -> tuple[str, ...]:
    return ("gunicorn", "-w", "1", "-b", "127.0.0.1:{port}", *worker, "{target}")


WAITRESS = ("waitress", "--listen=127.0.0.1:{port}", "{target}")
CASES: tuple[Case, ...] = (
    *(
        Case(f"{server}, obs (plain ASGI)", (server,), "conformance_plain", ASGI_APPS, "/boom")
        for server in ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "gunicorn-uvicorn")
    ),
    Case("uvicorn-h11, bare Starlette", ("uvicorn-h11",), "bare_starlette", None, "/boom"),
    Case("gunicorn gthread, obs", _gunicorn("-k", "gthread", "--threads", "4"),
         "plain_app:app", WSGI_APPS, "/early"),
    Case("gunicorn gthread, bare", _gunicorn("-k", "gthread", "--threads", "4"),
         "bare_wsgi:app", None, "/early"),
    Case("waitress, obs", WAITRESS, "plain_app:app", WSGI_APPS, "/early"),
    Case("waitress, bare", WAITRESS, "bare_wsgi:app", None, "/early"),
)  # fmt: skip


def argv_for(case: Case, port: int) -> list[str]:
    if len(case.argv) == 1:  # an ASGI server of the conformance suite
        return server_argv(case.argv[0], case.target, port)
    return [a.format(port=port, target=case.target) for a in case.argv]


def resets(case: Case, pairs: int, bare_dir: Path | None = None) -> int:
    """Requests of *pairs* (the crash, then ``/``) on one keep-alive connection that failed
    with a transport error."""
    port = free_port()
    cwd = case.cwd or bare_dir
    assert cwd is not None, "bare apps need bare_dir (write_bare_apps)"
    failed = 0
    with (
        serve(argv_for(case, port), port, cwd=cwd) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for _ in range(pairs):
            for path in (case.crash, "/"):
                try:
                    client.get(path)
                except httpx.TransportError:
                    failed += 1
    return failed


def write_bare_apps(directory: Path) -> None:
    (directory / "bare_starlette.py").write_text(BARE_STARLETTE)
    (directory / "bare_wsgi.py").write_text(BARE_WSGI)


def main(pairs: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp)
        write_bare_apps(bare)
        print(f"requests failed in {pairs} crash/next-request pairs on one keep-alive connection")
        for case in CASES:
            print(f"  {case.name}: {resets(case, pairs, bare)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
