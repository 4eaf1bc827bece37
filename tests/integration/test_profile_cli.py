"""``obs profile`` and ``obs dump`` against real processes: a busy script, a gunicorn master with
two workers, and the ways profiling fails (dead pid, not Python, another user's process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from obs.profiling.result import ProfileResult
from obs.profiling.tree import children
from tests.conftest import free_port
from tests.profiling.conftest import speedscope_frame_names, validate_speedscope

OBS = [sys.executable, "-m", "obs.cli"]
UNPRIVILEGED_USER = "obsnobody"

BUSY_SCRIPT = textwrap.dedent(
    """
    import time

    def obs_busy_function():
        deadline = time.monotonic() + 90  # never outlives a stuck test run by much
        total = 0
        while time.monotonic() < deadline:
            for i in range(1000):
                total += i * i
        return total

    print("ready", flush=True)
    obs_busy_function()
    """
)

GUNICORN_APP = textwrap.dedent(
    """
    import time

    def burn_cpu_in_worker():
        deadline = time.perf_counter() + 0.02
        total = 0
        while time.perf_counter() < deadline:
            for i in range(200):
                total += i * i
        return total

    def app(environ, start_response):
        burn_cpu_in_worker()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    """
)


def run_obs(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OBS, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def start_python(script: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("profile-cli")


@pytest.fixture(scope="module")
def busy(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    script = workdir / "busy.py"
    script.write_text(BUSY_SCRIPT)
    proc = start_python(script)
    yield proc
    stop(proc)


@pytest.fixture(scope="module")
def default_run(
    busy: subprocess.Popen[str], workdir: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``obs profile <pid> --duration 3`` with every default, run once for several tests."""
    result = run_obs("profile", str(busy.pid), "--duration", "3", cwd=workdir)
    return result, workdir / "profiles"


def test_default_run_writes_svg_and_speedscope_under_profiles(
    default_run: tuple[subprocess.CompletedProcess[str], Path], busy: subprocess.Popen[str]
) -> None:
    result, directory = default_run
    assert result.returncode == 0, result.stderr
    (svg,) = directory.glob(f"pid{busy.pid}-*.svg")
    (speedscope,) = directory.glob(f"pid{busy.pid}-*.speedscope.json")
    assert f"Wrote profiles/{svg.name}" in result.stdout
    assert f"Wrote profiles/{speedscope.name}" in result.stdout
    titles = [t.text or "" for t in ET.fromstring(svg.read_text()).iter()]
    assert any(t.startswith("obs_busy_function (busy.py:") for t in titles)
    document = validate_speedscope(speedscope)
    assert "obs_busy_function" in speedscope_frame_names(document)


def test_summary_counts_samples_and_names_the_busy_function(
    default_run: tuple[subprocess.CompletedProcess[str], Path], busy: subprocess.Popen[str]
) -> None:
    result, _ = default_run
    match = re.search(r"^(\d+) samples over ([\d.]+)s at 100 Hz; pids sampled: (.*)$",
                      result.stdout, re.M)  # fmt: skip
    assert match, result.stdout
    assert int(match[1]) > 150  # about 300 at 100 Hz for 3 s
    assert match[3] == str(busy.pid)
    own = result.stdout.split("Top functions by own time:\n")[1].splitlines()[0]
    total = result.stdout.split("Top functions by total time:\n")[1].splitlines()[0]
    assert "obs_busy_function (busy.py:" in own
    assert "<module> (busy.py:" in total or "obs_busy_function" in total


def test_collapsed_output_parses_and_top_function_is_the_busy_one(
    busy: subprocess.Popen[str], workdir: Path
) -> None:
    out = workdir / "busy.collapsed.txt"
    result = run_obs(
        "profile", str(busy.pid), "--duration", "3", "--format", "collapsed", "--output", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Wrote {out}\n")
    parsed = ProfileResult.from_collapsed(out.read_text())
    assert parsed.samples > 150
    assert parsed.top_own(1)[0].frame.startswith("obs_busy_function (busy.py:")


def _catches_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))


def _wait_for_spies_catching_sigint(parent: int, timeout: float) -> list[int]:
    """py-spy's pids once each has its Ctrl-C handler (installed after it attached): a signal
    before that is not the stop under test."""
    deadline = time.monotonic() + timeout
    while True:
        spies = children(parent)
        if spies and all(_catches_sigint(spy) for spy in spies):
            return spies
        assert time.monotonic() < deadline, f"no py-spy catching SIGINT after {timeout}s: {spies}"
        time.sleep(0.05)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop", "ignored"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["ctrl-c", "sigterm", "ctrl-c-from-a-background-job"],
)
def test_ctrl_c_stops_early_and_still_writes(
    busy: subprocess.Popen[str], workdir: Path, stop: signal.Signals, ignored: bool
) -> None:
    out = workdir / "interrupted.svg"
    started = time.monotonic()
    # A background job of a non-interactive shell (CI scripts, `cmd &`) starts with SIGINT
    # ignored; `kill -INT` must still stop obs profile.
    proc = subprocess.Popen(
        [*OBS, "profile", str(busy.pid), "--duration", "30", "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if ignored else None,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith(f"Sampling pid {busy.pid}")
    spies = _wait_for_spies_catching_sigint(proc.pid, timeout=20)
    time.sleep(0.5)  # some samples to write
    proc.send_signal(stop)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < 15
    assert out.exists() and out.with_name("interrupted.speedscope.json").exists()
    assert "obs_busy_function" in out.read_text()
    assert re.search(r"^\d+ samples over", stdout, re.M), stdout
    assert not any(Path(f"/proc/{spy}").exists() for spy in spies)  # no py-spy left behind


def test_dump_shows_the_current_stack(busy: subprocess.Popen[str]) -> None:
    result = run_obs("dump", str(busy.pid))
    assert result.returncode == 0, result.stderr
    assert "obs_busy_function (busy.py:" in result.stdout
    assert f"Process {busy.pid}" in result.stdout


# -- gunicorn ------------------------------------------------------------------------------------


@pytest.fixture
def gunicorn_under_load(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], set[int]]]:
    """A gunicorn master with 2 workers burning CPU under 4 client threads; its first workers."""
    (tmp_path / "burnapp.py").write_text(GUNICORN_APP)
    port = free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--chdir", str(tmp_path), "--timeout", "30", "burnapp:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stop_load = threading.Event()
    try:
        deadline = time.monotonic() + 20
        while len(workers := set(children(master.pid))) < 2 or not _answers(port):
            assert master.poll() is None, master.stderr.read() if master.stderr else ""
            assert time.monotonic() < deadline, "gunicorn did not start 2 workers in 20 s"
            time.sleep(0.1)

        def load() -> None:
            while not stop_load.is_set():
                _answers(port)

        clients = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for client in clients:
            client.start()
        yield master, workers
    finally:
        stop_load.set()
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        if master.stderr is not None:
            master.stderr.close()


def sampled_pids(stdout: str) -> set[int]:
    sampled = re.search(r"pids sampled: (.*)$", stdout, re.M)
    assert sampled, stdout
    return {int(p) for p in sampled[1].split(", ")}


def test_gunicorn_master_profile_samples_its_workers(
    gunicorn_under_load: tuple[subprocess.Popen[str], set[int]], tmp_path: Path
) -> None:
    master, workers = gunicorn_under_load
    out = tmp_path / "gunicorn.svg"
    result = run_obs("profile", str(master.pid), "--duration", "3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert workers <= sampled_pids(result.stdout), result.stdout
    document = validate_speedscope(out.with_name("gunicorn.speedscope.json"))
    assert "burn_cpu_in_worker" in speedscope_frame_names(document)
    profile_names = {p["name"].split(":")[0] for p in document["profiles"]}
    assert {f"pid {w}" for w in workers} <= profile_names


def test_a_worker_started_during_the_run_is_sampled_too(
    gunicorn_under_load: tuple[subprocess.Popen[str], set[int]], tmp_path: Path
) -> None:
    master, workers = gunicorn_under_load
    out = tmp_path / "recycled.txt"
    profile = subprocess.Popen(
        [*OBS, "profile", str(master.pid), "--duration", "6", "--format", "collapsed",
         "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.5)
    retired = min(workers)
    os.kill(retired, signal.SIGTERM)  # gunicorn replaces a worker that exits
    deadline = time.monotonic() + 10
    while not (replacements := set(children(master.pid)) - workers):
        assert time.monotonic() < deadline, "gunicorn did not replace the worker in 10 s"
        time.sleep(0.1)
    stdout, stderr = profile.communicate(timeout=60)
    assert profile.returncode == 0, stderr
    pids = sampled_pids(stdout)
    assert replacements & pids, f"replacement {replacements} not among sampled pids {pids}"
    assert workers - {retired} <= pids
    stacks = ProfileResult.from_collapsed(out.read_text())
    assert {
        s.pid for s in stacks.stacks if "burn_cpu_in_worker" in ";".join(s.frames)
    } & replacements


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# -- failures ------------------------------------------------------------------------------------


def test_dead_pid_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    result = run_obs("profile", str(proc.pid), "--duration", "1", cwd=tmp_path)
    assert_one_line_error(result, f"no process with pid {proc.pid}", "ps ")
    assert not (tmp_path / "profiles").exists()
    assert_one_line_error(run_obs("dump", str(proc.pid)), f"no process with pid {proc.pid}")


def test_non_python_process_is_one_line_error(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        result = run_obs("profile", str(sleeper.pid), "--duration", "1", cwd=tmp_path)
        dumped = run_obs("dump", str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert_one_line_error(result, f"process {sleeper.pid} (sleep 60) is not a Python process")
    assert_one_line_error(dumped, "is not a Python process")


def unprivileged_command(args: list[str]) -> list[str]:
    """*args* run as the unprivileged user, or a loud failure saying why that is impossible.

    The user keeps one capability, CAP_DAC_READ_SEARCH, so it can reach this interpreter even
    where it lives under /root (mode 0700 in this container). It has no CAP_SYS_PTRACE and
    another uid than the target: exactly the situation of a user profiling someone else's process.
    """
    if os.geteuid() != 0:
        pytest.fail(
            "the permission-denied test must start a process as root and profile it as another "
            "user; run the test suite as root (as CI does)."
        )
    if subprocess.run(["id", UNPRIVILEGED_USER], capture_output=True, check=False).returncode:
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             UNPRIVILEGED_USER], capture_output=True, text=True, check=False,
        )  # fmt: skip
        if created.returncode:
            pytest.fail(f"cannot create user {UNPRIVILEGED_USER}: {created.stderr.strip()}")
    return [
        "setpriv", f"--reuid={UNPRIVILEGED_USER}", f"--regid={UNPRIVILEGED_USER}",
        "--clear-groups", "--inh-caps=-all,+dac_read_search",
        "--ambient-caps=+dac_read_search", *args,
    ]  # fmt: skip


def test_other_users_process_is_permission_denied(busy: subprocess.Popen[str]) -> None:
    env = {**os.environ, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run(
        unprivileged_command([sys.executable, "-c", "import os, obs; print(os.getuid())"]),
        capture_output=True, text=True, env=env, cwd="/tmp", timeout=30, check=False,
    )  # fmt: skip
    assert check.returncode == 0 and check.stdout.strip() != "0", (
        f"the unprivileged user cannot run this interpreter: {check.stderr.strip()}"
    )
    results = [
        subprocess.run(
            unprivileged_command([*OBS, *args, str(busy.pid)]),
            capture_output=True,
            text=True,
            env=env,
            cwd="/tmp",
            timeout=60,
            check=False,
        )
        for args in (["profile", "--duration", "1"], ["dump"])
    ]
    for result in results:
        line = assert_one_line_error(result, f"permission denied reading process {busy.pid}")
        for hint in ("same user", "root", "SYS_PTRACE", "ptrace_scope"):
            assert hint in line


def test_py_spy_missing_is_one_line_error(tmp_path: Path) -> None:
    # An interpreter whose directory has no py-spy, and a PATH without one.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    code = "import sys; from obs.cli import main; main(sys.argv[1:])"
    result = subprocess.run(
        [str(bindir / "python"), "-c", code, "profile", str(os.getpid()), "--duration", "1"],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "PATH": str(bindir), "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert_one_line_error(result, "py-spy is not installed", "pip install py-spy")
