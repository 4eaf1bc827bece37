"""Through a real uvicorn, the app behind obs answers exactly as it does without it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from websockets.sync.client import connect

from tests.conftest import free_port
from tests.integration.servers import serve

VOLATILE = {"date", "x-request-id"}
REQUESTS = [
    ("GET", "/text", None),
    ("HEAD", "/text", None),
    ("GET", "/empty/204", None),
    ("GET", "/empty/304", None),
    ("POST", "/upload", b"z" * (8 * 1024 * 1024)),
    ("GET", "/events", None),
    ("GET", "/nope", None),
    ("DELETE", "/text", None),
]


def run(
    module_app: str, marker: Path
) -> tuple[list[tuple[int, dict[str, str], bytes]], list[str], list[str]]:
    port = free_port()
    argv = ["uvicorn", module_app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    answers = []
    # A fixed hash seed: Starlette builds its Allow header from a set.
    env = {"LIFESPAN_MARKER": str(marker), "PYTHONHASHSEED": "0"}
    with serve(argv, port, env=env, ready_path="/text") as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for method, path, body in REQUESTS:
                response = client.request(method, path, content=body)
                headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
                answers.append((response.status_code, headers, response.content))
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            replies = []
            for word in ("one", "two"):
                ws.send(word)
                replies.append(str(ws.recv(timeout=10)))
        server.stop()
        lines = server.lines()
    return answers, replies, lines


def test_behind_obs_everything_but_the_request_id_is_unchanged(tmp_path: Path) -> None:
    bare, bare_ws, _ = run("behaviour_app:bare_app", tmp_path / "bare")
    wrapped, wrapped_ws, lines = run("behaviour_app:app", tmp_path / "wrapped")
    assert wrapped == bare
    assert wrapped_ws == bare_ws == ["ONE", "TWO"]
    assert bare[4][2] == b"8388608"  # the 8 MiB upload arrived whole
    assert (
        (tmp_path / "wrapped").read_text()
        == (tmp_path / "bare").read_text()
        == "startup\nshutdown\n"
    )
    access = [json.loads(line) for line in lines if '"obs.access"' in line]
    by_path = {(a["http_request_method"], a["path"]): a for a in access}
    assert by_path[("POST", "/upload")]["bytes_in"] == 8 * 1024 * 1024
    assert by_path[("HEAD", "/text")]["bytes_out"] == 0
    assert {a["status"] for a in access} >= {200, 204, 304, 404, 405}
