"""The logging pipeline seen from outside: real interpreters, real uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, run_python

SCRIPT = textwrap.dedent(
    """
    import logging, structlog, obs
    obs.configure_logging(service_name="proc-test")
    logging.getLogger("plain").warning("from stdlib %s", "args")
    obs.get_logger("app").info("from structlog", headers={"Authorization": "Bearer tok-123"})
    structlog.get_logger().info("bare structlog", nested={"deep": {"password": "pw-456"}})
    try:
        {}["k"]
    except KeyError:
        obs.get_logger("app").exception("failed")
    """
)


def test_one_json_format_for_the_whole_process() -> None:
    proc = run_python(SCRIPT)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["event"] for r in records] == [
        "from stdlib args",
        "from structlog",
        "bare structlog",
        "failed",
    ]
    for record in records:
        assert {"timestamp", "level", "logger", "event", "service"} <= record.keys()
        assert record["service"] == "proc-test"
    assert records[0]["logger"] == "plain" and records[0]["level"] == "warning"
    assert records[2]["logger"] == "__main__"
    assert "tok-123" not in proc.stdout and "pw-456" not in proc.stdout
    assert records[3]["exception"][0]["exc_type"] == "KeyError"
    assert records[3]["level"] == "error"


def test_invalid_log_format_is_one_line() -> None:
    proc = run_python("import obs; obs.configure_logging()", env={"OBS_LOG_FORMAT": "xml"})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "OBS_LOG_FORMAT='xml' is invalid; use one of: json, console, auto." in last


APP = textwrap.dedent(
    """
    import obs
    obs.configure_logging(service_name="uv-test")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


def test_uvicorn_lines_come_out_in_obs_format(tmp_path: Path) -> None:
    (tmp_path / "logapp.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "logapp:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text == "ok"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                assert server.poll() is None, server.communicate()
                time.sleep(0.1)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    events = {r["event"] for r in records}
    assert any(e.startswith("Uvicorn running on http://127.0.0.1") for e in events), out + err
    assert any(e.startswith("Started server process") for e in events)
    assert {r["logger"] for r in records} <= {"uvicorn.error", "uvicorn.access"}
    assert all(r["service"] == "uv-test" for r in records)
    assert err.strip() == "", err


def test_print_and_log_lines_keep_their_order_in_a_pipe() -> None:
    code = textwrap.dedent(
        """
        import obs
        obs.configure_logging(service_name="order")
        log = obs.get_logger("x")
        for i in range(50):
            print(f"print {i}")
            log.info("log", i=i)
        """
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 100
    for i in range(50):
        assert lines[2 * i] == f"print {i}"
        assert json.loads(lines[2 * i + 1])["i"] == i
