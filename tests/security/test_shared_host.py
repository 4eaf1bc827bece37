"""A local unprivileged user (``obsnobody``) against obs's state directories, obs serving as root.

Each test plays the attack the issue reproduced: the other user creates the directory first, or
plants symbolic links where obs will write, and root must neither use its directory, nor write
through its links, nor leave profiles it can read.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from obs.profiling.request import RequestProfiler
from tests.security.conftest import as_nobody, nobody_uid, run_obs_python

TOKEN = "a-profile-token-of-24-chars"

# A worker as gunicorn runs it: the config module's hooks, then a metric written to its file.
# It prints its pid and waits, so that the other user can plant ``counter_<pid>.db`` first.
WORKER = textwrap.dedent(
    """
    import os, sys
    try:
        import obs.gunicorn as hooks
        hooks.on_starting(None)
    except Exception as exc:
        print("refused:", type(exc).__name__, exc, flush=True)
        sys.exit(3)
    print(os.getpid(), flush=True)
    sys.stdin.readline()
    from obs.metrics import get_metrics
    get_metrics().log_events.labels("info").inc()
    print("wrote", flush=True)
    """
)


@pytest.mark.parametrize("made_by", ["the other user", "root, but writable by all"])
def test_a_multiprocess_directory_others_can_write_is_refused(
    made_by: str, shared_tmp: Path, root_only: Path
) -> None:
    target = root_only / "created-through-a-link.db"
    if made_by == "the other user":
        made = as_nobody(f"import os; p = {str(shared_tmp)!r}; os.mkdir(p); os.chmod(p, 0o777)")
        assert made.returncode == 0, made.stderr
    else:
        shared_tmp.mkdir()
        os.chmod(shared_tmp, 0o777)
    worker = run_obs_python(WORKER, {"PROMETHEUS_MULTIPROC_DIR": str(shared_tmp)})
    try:
        assert worker.stdout is not None and worker.stdin is not None
        first = worker.stdout.readline().strip()
        if first.isdigit():  # the directory was accepted: the other user plants its link
            planted = as_nobody(
                f"import os; os.symlink({str(target)!r}, "
                f"os.path.join({str(shared_tmp)!r}, 'counter_{first}.db'))"
            )
            assert planted.returncode == 0, planted.stderr
            worker.stdin.write("\n")
            worker.stdin.flush()
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert not target.exists(), "root created a file through the other user's link"
    assert worker.returncode == 3, (first, out, err)
    assert first.startswith("refused: UnsafePathError"), first
    if made_by == "the other user":
        assert f"owned by uid {nobody_uid()}" in first
    else:
        assert "writable by other users" in first and "chmod go-w" in first
    assert not [p for p in shared_tmp.iterdir() if p.stat(follow_symlinks=False).st_uid == 0]


def test_the_default_multiprocess_directory_is_private_and_unguessable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    code = "import os, obs.gunicorn; print(os.environ['PROMETHEUS_MULTIPROC_DIR'], os.getpid())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    path, pid = done.stdout.split()
    try:
        name = os.path.basename(path)
        assert re.fullmatch(r"obs-prometheus-multiproc-[A-Za-z0-9_]{8,}", name), name
        assert not name.endswith(f"-{pid}"), "named after the master's pid: guessable"
        info = os.lstat(path)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.geteuid()
        peek = as_nobody(f"import os; print(os.listdir({path!r}))")
        assert peek.returncode != 0 and "PermissionError" in peek.stderr, peek.stdout
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def test_a_link_planted_in_the_multiprocess_directory_is_never_followed(
    tmp_path: Path, root_only: Path
) -> None:
    """Defence in depth, should a link get into a private directory all the same."""
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    victim = root_only / "victim"
    victim.write_text("precious")
    code = textwrap.dedent(
        f"""
        import os
        os.symlink({str(victim)!r}, os.path.join({str(directory)!r}, f"counter_{{os.getpid()}}.db"))
        from obs.metrics import get_metrics
        try:
            get_metrics().log_events.labels("info").inc()
        except OSError as exc:
            print("refused", type(exc).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert victim.read_text() == "precious" and victim.stat().st_size == len("precious")
    assert "refused" in done.stdout, (done.stdout, done.stderr)


def test_profiles_are_never_written_through_links_in_a_squatted_directory(
    shared_tmp: Path, root_only: Path
) -> None:
    victim = root_only / "shadow"
    victim.write_text("precious")
    planted = as_nobody(
        textwrap.dedent(
            f"""
            import os
            os.mkdir({str(shared_tmp)!r}, 0o777)
            os.chmod({str(shared_tmp)!r}, 0o777)
            for stem in ["rid-1"] + [f"rid-1-{{n}}" for n in range(2, 10)]:
                for suffix in (".html", ".speedscope.json"):
                    link = os.path.join({str(shared_tmp)!r}, stem + suffix)
                    os.symlink({str(root_only)!r} + "/created" + suffix, link)
            """
        )
    )
    assert planted.returncode == 0, planted.stderr
    profiler = RequestProfiler(TOKEN, shared_tmp)
    profile = profiler.start(TOKEN, "rid-1")  # the client chose its request id
    assert profile is not None
    time.sleep(0.01)
    profile.stop()
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in root_only.iterdir()) == ["shadow"], "written through a link"
    assert len(list(shared_tmp.iterdir())) == 18
    assert all(p.is_symlink() for p in shared_tmp.iterdir())  # nothing of root's landed there


BUSY = textwrap.dedent(
    """
    import sys, time
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sum(i * i for i in range(1000))
    """
)
SECRETS = ("hunter2-secret", "k-secret-2", "pw-secret-3")


def test_obs_profile_outputs_are_owner_only_and_hold_no_secret_arguments(
    shared_tmp: Path,
) -> None:
    shared_tmp.mkdir(mode=0o755)
    os.chmod(shared_tmp, 0o755)  # a working directory other users may enter, as most are
    script = shared_tmp / "busy.py"
    script.write_text(BUSY)
    argv = [sys.executable, str(script), f"--db-password={SECRETS[0]}", "--api-key", SECRETS[1]]
    target = subprocess.Popen(
        [*argv, f"postgres://app:{SECRETS[2]}@db/x"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert target.stdout is not None and target.stdout.readline().strip() == "ready"
        done = subprocess.run(
            [sys.executable, "-m", "obs.cli", "profile", str(target.pid), "--duration", "2"],
            cwd=shared_tmp, capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    finally:
        target.kill()
        target.wait()
        if target.stdout is not None:
            target.stdout.close()
    assert done.returncode == 0, done.stderr
    profiles = shared_tmp / "profiles"
    files = sorted(profiles.iterdir())
    assert [f.suffix for f in files] == [".json", ".svg"], files
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        text = path.read_text()
        assert not [s for s in SECRETS if s in text], path
        peek = as_nobody(f"print(open({str(path)!r}).read()[:10])")
        assert peek.returncode != 0 and "PermissionError" in peek.stderr, path
    svg = next(f for f in files if f.suffix == ".svg").read_text()
    assert "--db-password=[REDACTED]" in svg and "--api-key [REDACTED]" in svg


PREPARE = textwrap.dedent(
    """
    from obs.prometheus.multiprocess import prepare
    try:
        prepare()
    except Exception as exc:
        print("refused:", type(exc).__name__, exc, flush=True)
    else:
        print("accepted", flush=True)
    """
)


def test_a_multiprocess_directory_under_a_parent_another_user_owns_is_refused(
    shared_tmp: Path, stranger: int
) -> None:
    """The other user owns the parent, so it could swap the directory for one of its own (with
    forged ``*.db`` files) after obs checked it; obs refuses before writing anything."""
    shared_tmp.mkdir(mode=0o755)
    metrics = shared_tmp / "metrics"
    metrics.mkdir(mode=0o700)  # even a directory of root's, as obs would make it
    os.chown(shared_tmp, stranger, stranger)
    for path in (metrics, shared_tmp / "fresh"):
        done = subprocess.run(
            [sys.executable, "-c", PREPARE], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        line = done.stdout.strip()
        assert line.startswith("refused: UnsafePathError"), (line, done.stderr)
        assert f"{shared_tmp}, above {path}" in line and f"owned by uid {stranger}" in line
        assert "\n" not in line
    assert sorted(p.name for p in shared_tmp.iterdir()) == ["metrics"]
    assert list(metrics.iterdir()) == [], "obs wrote into a directory the other user can swap"


def test_profiles_are_not_written_under_a_profile_dir_another_user_owns(
    tmp_path: Path, stranger: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """OBS_PROFILE_DIR itself the other user's: neither one-request profiles (in a directory of
    ours below it) nor slow-request ones (in ``slow/``, 0700 and ours) are written there."""
    from obs.profiling.slow import SlowRequestProfiler

    profile_dir = tmp_path / "profiles"
    (profile_dir / "slow").mkdir(parents=True, mode=0o700)
    (profile_dir / "one").mkdir(mode=0o700)
    os.chown(profile_dir, stranger, stranger)
    profiler = RequestProfiler(TOKEN, profile_dir / "one")
    profile = profiler.start(TOKEN, "rid-1")
    assert profile is not None
    time.sleep(0.01)
    assert profile.stop() is None
    slow = SlowRequestProfiler(profile_dir / "slow", threshold=0.0, rate=200)
    try:
        samples = slow.begin()
        assert samples is not None
        deadline = time.monotonic() + 10
        while samples.samples < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert samples.samples >= 1, "the sampler took no sample in 10 s"
        assert samples.finish(0.05, "/r", "rid-2") is None
        slow.write_pending()
    finally:
        slow.close()
    lines = [
        line for line in capsys.readouterr().err.splitlines() if f"{profile_dir}, above" in line
    ]
    assert len(lines) == 2 and all(f"owned by uid {stranger}" in line for line in lines), lines
    assert list((profile_dir / "one").iterdir()) == []
    assert list((profile_dir / "slow").iterdir()) == []
