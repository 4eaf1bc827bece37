"""``obs doctor`` against real servers and a real Prometheus: each check passes where the
set-up is right and fails (or warns) where it is not, with what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from obs.cli import cli
from obs.doctor.profiling import ptrace_verdict
from tests.conftest import free_port
from tests.integration.servers import Server, serve

APPS = Path(__file__).resolve().parents[1] / "http" / "apps"
DOCTOR_APPS = Path(__file__).resolve().parent / "apps"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
VENV_PYTHON = sys.executable


def doctor(*args: str) -> tuple[int, dict[str, str]]:
    """Run ``obs doctor``; its lines by check name (``status detail``)."""
    result = CliRunner().invoke(cli, ["doctor", *args])
    lines: dict[str, str] = {}
    for line in result.output.splitlines():
        status, _, rest = line.partition(" ")
        check, _, detail = rest.strip().partition(": ")
        lines[check] = f"{status} {detail}"
    return result.exit_code, lines


@contextmanager
def uvicorn(*extra: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    argv = ["uvicorn", "options_asgi_app:app", "--host", "127.0.0.1", "--port", str(port), *extra]
    with serve(argv, port, cwd=APPS, env=env or {}, ready_path="/items/ready") as server:
        yield server


def test_a_well_set_up_uvicorn_passes_every_check() -> None:
    with uvicorn("--no-access-log") as server:
        code, lines = doctor("--url", server.base_url, "--pid", str(server.process.pid))
    assert code == 0, lines
    for check in ("/metrics reachable", "OpenMetrics", "exemplars", "obs outermost", "logging",
                  "one access log", "multiprocess", "py-spy", "ptrace"):  # fmt: skip
        assert lines[check].startswith("ok "), (check, lines)
    assert "as json (auto: stdout is not a terminal)" in lines["logging"]
    assert lines["one access log"] == "ok obs's only (uvicorn's is off)"


def test_uvicorn_without_obs_logging_and_with_its_access_log() -> None:
    with uvicorn(env={"OPTIONS_TEST_LOGGING": "0"}) as server:
        code, lines = doctor("--url", server.base_url, "--pid", str(server.process.pid))
    assert code == 1
    assert lines["logging"].startswith("fail no line went through obs's pipeline")
    assert "call obs.configure_logging() at start-up" in lines["logging"]
    assert lines["one access log"].startswith("warn uvicorn writes an access line beside obs's")
    assert "add --no-access-log" in lines["one access log"]


@pytest.mark.parametrize(("layout", "route"), [("mount", "/{path}"), ("spa", "/{full_path:path}")])
def test_exemplars_on_a_route_template_with_braces(layout: str, route: str) -> None:
    port = free_port()
    argv = ["uvicorn", "braces_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    env = {"DOCTOR_LAYOUT": layout}
    with serve(argv, port, cwd=DOCTOR_APPS, env=env) as server:
        code, lines = doctor("--url", server.base_url)
        scrape = httpx.get(f"{server.base_url}/metrics", headers={"Accept": OPENMETRICS}).text
    assert f'http_route="{route}"' in scrape  # the layout gives the template it is meant to
    assert lines["exemplars"].startswith("ok the probe's request id is an exemplar"), lines
    assert code == 0, lines


def test_a_service_without_obs_outermost_nor_openmetrics_fails() -> None:
    with uvicorn("--no-access-log", env={"OPTIONS_TEST_BARE": "1"}) as server:
        code, bare = doctor("--url", server.base_url)
        _, plain = doctor("--url", server.base_url, "--metrics-path", "/plain-metrics")
        _, missing = doctor("--url", server.base_url, "--metrics-path", "/nowhere")
    assert code == 1
    assert bare["obs outermost"].startswith("fail a 404 came back without X-Request-ID")
    assert "ObservabilityMiddleware(app) as the last line" in bare["obs outermost"]
    assert bare["exemplars"].startswith("fail no exemplar with a request id")
    assert plain["OpenMetrics"].startswith("fail asked for OpenMetrics, got text/plain")
    assert missing["/metrics reachable"].startswith("fail the metrics path answered 404")


@contextmanager
def gunicorn(*config: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    argv = ["gunicorn", *config, "-w", "2", "-b", f"127.0.0.1:{port}", "options_wsgi_app:app"]
    with serve(argv, port, cwd=APPS, env=env or {}, ready_path="/items/ready") as server:
        deadline = time.monotonic() + 20
        while len(workers(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(20):  # every worker makes its files
            httpx.get(f"{server.base_url}/items/{i}", timeout=5)
        yield server


def workers(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_gunicorn_with_obs_gunicorn_has_its_multiprocess_set_up() -> None:
    with gunicorn("-c", "python:obs.gunicorn") as server:
        code, lines = doctor("--url", server.base_url, "--pid", str(server.process.pid))
    assert lines["multiprocess"].startswith("ok 2 workers share ")
    assert lines["multiprocess directory private"].startswith("ok ")
    assert lines["multiprocess directory emptied"].startswith("ok ")
    assert lines["child-exit hook"].startswith("ok obs.gunicorn folds")
    assert code == 0, lines


def test_gunicorn_without_the_multiprocess_set_up_fails() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with gunicorn(env=env) as server:
        code, lines = doctor("--pid", str(server.process.pid))
    assert code == 1
    assert lines["multiprocess"].startswith("fail 2 workers but no PROMETHEUS_MULTIPROC_DIR")


def test_gunicorn_with_a_shared_stale_directory_and_no_hook() -> None:
    directory = Path(tempfile.mkdtemp(prefix="obs-doctor-mp-"))
    try:
        stale = directory / "counter_1.db"
        stale.write_bytes(b"\0" * 16)
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
        directory.chmod(0o777)
        with gunicorn(env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}) as server:
            code, lines = doctor("--pid", str(server.process.pid))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert code == 1
    assert lines["multiprocess"] == f"ok 2 workers share {directory}"
    assert lines["multiprocess directory private"].startswith("fail ")
    assert f"chmod 700 {directory}" in lines["multiprocess directory private"]
    assert lines["multiprocess directory emptied"].startswith(
        "fail 1 file(s) older than the server"
    )
    assert lines["child-exit hook"].startswith("warn nothing folds a dead worker's files")


@contextmanager
def prometheus(work: Path, targets: list[str], *, exemplars: bool) -> Iterator[str]:
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "doctor", "static_configs": [{"targets": targets}]}],
    }
    work.mkdir(parents=True)
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus binary is needed: apt-get install prometheus"
    argv = [
        binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    if exemplars:
        argv.append("--enable-feature=exemplar-storage")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_prometheus_with_and_without_exemplar_storage(tmp_path: Path) -> None:
    with uvicorn("--no-access-log") as server:
        target = server.base_url.removeprefix("http://")
        with prometheus(tmp_path / "with", [target], exemplars=True) as url:
            deadline = time.monotonic() + 30
            while True:
                code, lines = doctor("--url", server.base_url, "--prometheus", url)
                if (
                    lines["Prometheus scrapes the service"].startswith("ok ")
                    or time.monotonic() > deadline
                ):
                    break
                time.sleep(0.5)
        assert lines["Prometheus exemplar storage"] == "ok --enable-feature=exemplar-storage"
        assert lines["Prometheus scrapes the service"] == "ok job doctor is up"
        assert code == 0, lines
        with prometheus(tmp_path / "without", [], exemplars=False) as url:
            code, lines = doctor("--url", server.base_url, "--prometheus", url)
    assert code == 1
    assert lines["Prometheus exemplar storage"].startswith("fail started without exemplar storage")
    assert "--enable-feature=exemplar-storage" in lines["Prometheus exemplar storage"]
    assert lines["Prometheus scrapes the service"].startswith("fail no scrape target at 127.0.0.1:")


def test_ptrace_fails_for_another_user() -> None:
    """Run as the unprivileged user against a root process: py-spy could not attach."""
    target = subprocess.Popen([VENV_PYTHON, "-c", "import time; time.sleep(60)"])
    try:
        src = Path(__file__).resolve().parents[2] / "src"
        proc = subprocess.run(
            # Files stay readable (as in tests/integration/test_profile_cli.py); ptrace is gone.
            ["setpriv", "--reuid=obsnobody", "--regid=obsnobody", "--clear-groups",
             "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
             VENV_PYTHON, "-m", "obs", "doctor", "--pid", str(target.pid)],
            capture_output=True, text=True, timeout=60, check=False, cwd="/tmp",
            env={**os.environ, "PYTHONPATH": str(src), "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
        )  # fmt: skip
    finally:
        target.kill()
        target.wait()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if " ptrace: " in x)
    assert line.startswith("fail ptrace: the target runs as another user"), line
    assert "run obs profile as that user or as root" in line


@pytest.mark.parametrize(
    ("scope", "cap", "same_user", "possible"),
    [(None, False, True, True), (0, False, True, True), (1, False, True, False),
     (1, True, True, True), (2, True, False, True), (2, False, True, False),
     (3, True, True, False), (0, False, False, False)],
)  # fmt: skip
def test_ptrace_verdict(scope: int | None, cap: bool, same_user: bool, possible: bool) -> None:
    allowed, why, fix = ptrace_verdict(scope, cap, same_user)
    assert allowed is possible
    assert bool(fix) is not possible and why


def test_doctor_needs_something_to_look_at() -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert (
        result.exit_code == 2 and "give at least one of --url, --prometheus, --pid" in result.output
    )


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [("--url", "notaurl", "--url notaurl has no scheme; pass --url http://notaurl"),
     ("--url", "127.0.0.1:8000", "--url 127.0.0.1:8000 has no scheme; pass --url http://127.0.0.1:8000"),
     ("--url", "ftp://127.0.0.1", "--url ftp://127.0.0.1 is not an http:// or https:// URL"),
     ("--prometheus", "localhost:9090", "pass --prometheus http://localhost:9090")],
)  # fmt: skip
def test_a_url_that_is_not_one_fails_up_front_in_one_line(
    option: str, value: str, said: str
) -> None:
    result = CliRunner().invoke(cli, ["doctor", option, value])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.splitlines()) == 1 and result.output.startswith("Error: ")
    assert said in result.output


def test_checks_that_could_not_run_say_so_instead_of_giving_advice() -> None:
    """A well set-up service whose metrics the doctor could not read: no check may tell it to
    call configure_logging() or wrap the app; each says what to fix first."""
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with uvicorn("--no-access-log") as server:
        runs = {
            "wrong --metrics-path": doctor("--url", server.base_url, "--metrics-path", "/nowhere"),
            "unreachable --url": doctor("--url", nowhere),
            "unreachable --prometheus": doctor("--url", server.base_url, "--prometheus", nowhere),
        }
    for run, (code, lines) in runs.items():
        assert code == 1, (run, lines)
        advice = " ".join(lines.values())
        assert "configure_logging" not in advice and "ObservabilityMiddleware" not in advice, run
    for run in ("wrong --metrics-path", "unreachable --url"):
        lines = runs[run][1]
        assert lines["/metrics reachable"].startswith("fail "), (run, lines)
        for check in ("OpenMetrics", "exemplars", "logging"):
            assert lines[check].startswith("skip not checked: "), (run, check, lines)
            assert lines[check].endswith("-> fix /metrics reachable first"), (run, check, lines)
    assert runs["unreachable --url"][1]["obs outermost"].startswith("skip not checked: ")
    lines = runs["unreachable --prometheus"][1]
    assert lines["logging"].startswith("ok ") and lines["exemplars"].startswith("ok "), lines
    assert lines["Prometheus exemplar storage"].startswith("fail "), lines
    assert lines["Prometheus scrapes the service"].startswith("skip not checked: "), lines


def test_a_metrics_path_answering_200_without_obs_metrics_fails_reachable() -> None:
    """A single-page app's catch-all answers every path 200 with HTML."""
    port = free_port()
    argv = ["uvicorn", "braces_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    with serve(argv, port, cwd=DOCTOR_APPS, env={"DOCTOR_LAYOUT": "spa"}) as server:
        code, lines = doctor("--url", server.base_url, "--metrics-path", "/metrics-typo")
    assert code == 1
    assert lines["/metrics reachable"].startswith(
        "fail the metrics path answered 200 (text/html; charset=utf-8) with none of obs's"
    ), lines
    assert "point --metrics-path at obs's metrics app" in lines["/metrics reachable"]
    assert lines["logging"].startswith("skip not checked: "), lines


def test_a_pid_that_is_gone_or_not_python_fails_up_front_in_one_line() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    not_python = subprocess.Popen(["sleep", "60"])
    deadline = time.monotonic() + 10  # until it has exec'd: a fresh child is python still
    comm = Path(f"/proc/{not_python.pid}/comm")
    while comm.read_text().strip() != "sleep" and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        results = {
            "gone": CliRunner().invoke(cli, ["doctor", "--pid", str(gone.pid)]),
            "sleep": CliRunner().invoke(cli, ["doctor", "--pid", str(not_python.pid)]),
        }
    finally:
        not_python.kill()
        not_python.wait()
    for result in results.values():
        assert result.exit_code == 2, result.output
        assert len(result.output.splitlines()) == 1, result.output  # no "ok" for unrun checks
    assert results["gone"].output == (
        f"Error: --pid {gone.pid}: no such process; pass the service's pid (ps -ef)\n"
    )
    assert results["sleep"].output.startswith(
        f"Error: --pid {not_python.pid} (sleep) is not a Python process; pass the service's own"
    )


CHILD_EXIT_CONFIGS = {
    "from obs.gunicorn import *\nworkers = 2\n": "ok",
    "import obs.gunicorn\nfrom obs.gunicorn import *\n\n"
    "def child_exit(server, worker):\n    obs.gunicorn.child_exit(server, worker)\n": "ok",
    "from obs.gunicorn import *\nfrom obs.multiprocess import fold_dead_worker as fold\n\n"
    "def child_exit(server, worker):\n    fold(worker.pid)\n": "ok",
    "from obs.gunicorn import *\nfrom prometheus_client import multiprocess\n\n"
    "def child_exit(server, worker):\n    multiprocess.mark_process_dead(worker.pid)\n": "replaces",
    "workers = 2\n": "nothing",
}


@pytest.mark.parametrize("source", sorted(CHILD_EXIT_CONFIGS))
def test_the_child_exit_check_reads_a_configuration_file(source: str, tmp_path: Path) -> None:
    """A configuration file that keeps obs's hooks (``from obs.gunicorn import *``), or calls
    them from its own, is not flagged; one whose ``child_exit`` replaces obs's is."""
    from obs.doctor.process import ProcessInfo, check_multiprocess

    config = tmp_path / "gunicorn.conf.py"
    config.write_text(source)
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    info = ProcessInfo(
        os.getpid(),
        argv=["python", "-m", "gunicorn", "-c", str(config), "-w", "2", "app:app"],
        environ={"PROMETHEUS_MULTIPROC_DIR": str(directory)},
    )
    finding = {f.check: f for f in check_multiprocess(info)}["child-exit hook"]
    expected = CHILD_EXIT_CONFIGS[source]
    if expected == "ok":
        assert finding.status == "ok", finding
    elif expected == "replaces":
        assert finding.status == "warn" and "replaces obs.gunicorn's child_exit" in finding.detail
    else:
        assert finding.status == "warn" and "nothing folds" in finding.detail
