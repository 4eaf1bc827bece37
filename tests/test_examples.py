"""Every example runs, as its docstring says, and does what it claims."""

from __future__ import annotations

import json
import re
import shlex

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.integration.servers import serve

EXAMPLES = ROOT / "examples"

ASGI_EXAMPLES = {
    "fastapi_app.py": ("/items/3", "/items/{item_id}"),
    "starlette_app.py": ("/users/ann", "/users/{name}"),
    "litestar_app.py": ("/orders/7", "/orders/{order_id}"),
}


def run_command(example: str) -> list[str]:
    """The ``Run:`` line of the example's docstring."""
    match = re.search(r"^Run:\s+(.+)$", (EXAMPLES / example).read_text(), flags=re.M)
    assert match, f"{example} has no 'Run:' line"
    return shlex.split(match.group(1))


@pytest.mark.parametrize("example", sorted(ASGI_EXAMPLES))
def test_asgi_example_serves_as_documented(example: str) -> None:
    argv = run_command(example)
    assert argv[0] == "uvicorn"
    port = free_port()
    path, template = ASGI_EXAMPLES[example]
    with serve([*argv, "--host", "127.0.0.1", "--port", str(port)], port, cwd=ROOT) as server:
        response = httpx.get(server.base_url + path, timeout=10)
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        metrics = httpx.get(server.base_url + "/metrics", timeout=10).text
        assert f'http_route="{template}"' in metrics
        server.stop()
    access = [json.loads(line) for line in server.lines() if '"obs.access"' in line]
    assert [(a["path"], a["request_id"]) for a in access] == [(path, request_id)]
