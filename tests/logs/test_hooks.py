from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from obs.logs import hooks

_SCRIPT = """
import sys, threading, obs
obs.configure_logging(service_name="h", log_format="json", stream=sys.stdout)
obs.configure_logging(service_name="h", log_format="json", stream=sys.stdout)  # once only
what = sys.argv[1]
if what == "thread":
    t = threading.Thread(target=lambda: 1 / 0, name="worker-1")
    t.start()
    t.join()
    print('{"event": "main goes on"}')
elif what == "interrupt":
    raise KeyboardInterrupt
else:
    raise ValueError("boom")
"""


def run(tmp_path: Path, what: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "uncaught.py"
    script.write_text(_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), what], capture_output=True, text=True, timeout=60
    )


def test_an_uncaught_exception_is_one_json_line(tmp_path: Path) -> None:
    done = run(tmp_path, "main")
    assert done.returncode == 1
    assert done.stderr == ""  # no plain traceback
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert (line["logger"], line["level"], line["event"]) == (
        hooks.LOGGER,
        "critical",
        "uncaught exception",
    )
    assert line["exception"][0]["exc_type"] == "ValueError"


def test_an_uncaught_exception_in_a_thread_is_one_json_line(tmp_path: Path) -> None:
    done = run(tmp_path, "thread")
    assert done.returncode == 0 and done.stderr == ""
    first, second = [json.loads(text) for text in done.stdout.splitlines()]
    assert first["thread"] == "worker-1" and first["level"] == "error"
    assert first["exception"][0]["exc_type"] == "ZeroDivisionError"
    assert second["event"] == "main goes on"


def test_keyboard_interrupt_keeps_the_default_hook(tmp_path: Path) -> None:
    done = run(tmp_path, "interrupt")
    assert "KeyboardInterrupt" in done.stderr and done.stdout == ""


def test_a_hook_installed_before_obs_is_still_called_and_restored(log: Any) -> None:
    seen: list[type[BaseException]] = []
    hooks.uninstall()
    sys.excepthook = lambda exc_type, exc, tb: seen.append(exc_type)
    hooks.install()
    try:
        raise RuntimeError("x")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    assert seen == [RuntimeError]
    assert json.loads(log.getvalue().splitlines()[-1])["event"] == "uncaught exception"
    hooks.uninstall()
    assert sys.excepthook is not None and not hasattr(sys.excepthook, "obs_previous")
    assert not hasattr(threading.excepthook, "obs_previous")
