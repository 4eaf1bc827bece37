"""``obs demo``: an instrumented FastAPI service under load, seen through all three pillars."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click

from obs.demo import prometheus as prom
from obs.demo.report import (
    access_line_text,
    parse_openmetrics,
    read_access_lines,
    red_table,
    slowest,
)
from obs.demo.traffic import start_traffic
from obs.exceptions import ObsError

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a process group we started; never leave anything behind."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def _port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:*port* (bound as servers bind, with
    ``SO_REUSEADDR``, so a closed connection's ``TIME_WAIT`` does not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on *port* (``/proc/net/tcp``, ``tcp6``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def _listens(process: subprocess.Popen[bytes], port: int) -> bool | None:
    """Whether *process* owns the socket listening on *port*; ``None`` where ``/proc`` cannot
    tell (not Linux)."""
    if not Path("/proc/net/tcp").exists():
        return None
    inodes = _listening_inodes(port)
    try:
        fds = os.listdir(f"/proc/{process.pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{process.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[len("socket:[") : -1] in inodes:
            return True
    return False


def _still_running(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def _wait_for(
    url: str,
    process: subprocess.Popen[bytes],
    what: str,
    port: int,
    in_use: str,
    timeout: float = 30,
) -> None:
    """Wait until *process* answers *url* on *port*. An answer counts only when *process* owns
    the listening socket: a program already on the port answers too while ours fails to bind
    and exits (then *in_use* is the error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if _port_in_use(port):
                raise ObsError(in_use)
            raise ObsError(f"the {what} exited at start-up; see its log in the demo directory.")
        try:
            with urllib.request.urlopen(url, timeout=1):
                pass
        except OSError:
            time.sleep(0.1)
            continue
        ours = _listens(process, port)
        # Without /proc, an answer counts if ours still runs a moment after it.
        if ours or (ours is None and _still_running(process, 0.5)):
            return
        time.sleep(0.1)
    raise ObsError(f"the {what} did not answer {url} within {timeout:.0f}s.")


def _fetch(url: str, accept: str | None = None) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def run_demo(
    duration: float, port: int | None, out: Path, echo: Callable[[str], None] = click.echo
) -> None:
    """Run the whole demo; every process it starts is stopped before it returns or raises."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ObsError(
            f"the demo needs {exc.name}; install it with: pip install 'obs-toolkit[demo]'"
        ) from exc
    if port is not None and _port_in_use(port):  # checked again once the service has started
        raise ObsError(f"port {port} is in use; choose another --port.")
    out.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    service: subprocess.Popen[bytes] | None = None
    profiler: subprocess.Popen[bytes] | None = None
    prometheus: subprocess.Popen[bytes] | None = None
    log_path = out / "service.log.jsonl"
    try:
        echo(f"Starting the demo service (FastAPI behind obs, uvicorn on 127.0.0.1:{port})")
        with log_path.open("wb") as log_file:
            service = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "obs.demo.service:app", "--host", "127.0.0.1",
                 "--port", str(port), "--no-access-log"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OBS_LOG_FORMAT": "json", "OBS_SERVICE_NAME": "obs-demo",
                     **_slow_profile_env(out)},
                start_new_session=True,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        in_use = f"port {port} is in use; choose another --port."
        _wait_for(base + "/metrics", service, "demo service", port, in_use)

        binary = prom.find_prometheus()
        prom_port = _free_port()
        if binary:
            prometheus = prom.start_prometheus(binary, port, prom_port, out)
            taken = f"port {prom_port} was taken before Prometheus could listen on it; run again."
            _wait_for(
                f"http://127.0.0.1:{prom_port}/-/ready", prometheus, "Prometheus", prom_port, taken
            )
        else:
            echo(f"prometheus is not on PATH; carrying on without it ({prom.INSTALL_HINT}).")

        profile_path = out / "profile.svg"
        profile_seconds = max(1.0, duration - 1.0)
        with (out / "profile.txt").open("wb") as profile_log:
            profiler = subprocess.Popen(
                [sys.executable, "-m", "obs", "profile", str(service.pid), "--duration",
                 f"{profile_seconds:g}", "--output", str(profile_path)],
                stdout=profile_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        threads, stats = start_traffic(port, duration)
        started = time.monotonic()
        with click.progressbar(length=int(duration * 10), label="Driving mixed traffic") as bar:
            done = 0
            while any(t.is_alive() for t in threads):
                time.sleep(0.1)
                now = min(int((time.monotonic() - started) * 10), int(duration * 10))
                bar.update(now - done)
                done = now
        for thread in threads:
            thread.join(timeout=15)
        elapsed = time.monotonic() - started
        echo(
            f"Sent {stats.sent} requests in {elapsed:.1f}s: {dict(sorted(stats.statuses.items()))}"
        )
        profiler.wait(timeout=profile_seconds + 60)

        om_text = _fetch(base + "/metrics", OPENMETRICS)
        (out / "metrics.txt").write_text(_fetch(base + "/metrics"))
        _show(echo, om_text, elapsed, log_path, out)
        _show_request_profile(echo, log_path)
        if prometheus is not None:
            _show_prometheus(echo, prom_port, duration)
        _write_dashboards(out)
        echo("")
        echo(f"Files in {out}/:")
        for name in (
            "profile.svg",
            "profile.speedscope.json",
            "profiles",
            "service.log.jsonl",
            "metrics.txt",
            "dashboards",
        ):
            if (out / name).exists():
                echo(f"  {out / name}")
        echo("Open the flame graph in a browser; load the speedscope file at speedscope.app.")
    finally:
        for process in (profiler, prometheus, service):
            _stop(process)


def _show(
    echo: Callable[[str], None], om_text: str, seconds: float, log_path: Path, out: Path
) -> None:
    stats, exemplars = parse_openmetrics(om_text)
    echo("")
    echo("RED metrics per route, from the service's own /metrics:")
    for row in red_table(stats, seconds):
        echo("  " + row)
    access, by_request = read_access_lines(log_path)
    echo("")
    echo("The slowest requests, from the JSON access log (metrics -> logs by request id):")
    for record in slowest(access):
        echo("  " + access_line_text(record))
        for other in by_request.get(str(record.get("request_id")), []):
            if other.get("event") != "request":
                echo(f"      and its log line: {other.get('logger')}: {other.get('event')}")
    if exemplars:
        top = max(exemplars, key=lambda e: e.value)
        echo("")
        echo(
            f"Exemplar on the {top.route} latency bucket le={top.upper_bound:g}s points to "
            f"request_id={top.request_id}:"
        )
        for record in by_request.get(top.request_id, []):
            echo(f"  {record.get('logger')}: {record.get('event')} {record.get('path', '')} "
                 f"{record.get('status', '')} {record.get('duration_ms', '')}")  # fmt: skip
    profile_summary = (out / "profile.txt").read_text(errors="replace").strip()
    if profile_summary:
        echo("")
        echo("obs profile (py-spy) while the load ran:")
        for line in profile_summary.splitlines()[-24:]:
            echo("  " + line)


#: Requests slower than this keep their own flame graph in the demo (the default is 1 s).
DEMO_SLOW_PROFILE_THRESHOLD = 0.3
#: The demo keeps every slow request's profile (retention still bounds the files).
DEMO_SLOW_PROFILES_PER_MINUTE = 600


def _slow_profile_env(out: Path) -> dict[str, str]:
    return {
        "OBS_SLOW_PROFILES": "1",
        "OBS_SLOW_PROFILE_THRESHOLD": str(DEMO_SLOW_PROFILE_THRESHOLD),
        # Above the default cap of 10 a minute: on a loaded machine the demo's first ten slow
        # requests can all be /report, leaving /slow (and often the slowest) without a profile.
        "OBS_SLOW_PROFILE_PER_MINUTE": str(DEMO_SLOW_PROFILES_PER_MINUTE),
        "OBS_PROFILE_DIR": str((out / "profiles").resolve()),
    }


def _show_request_profile(echo: Callable[[str], None], log_path: Path, wait: float = 5.0) -> None:
    """The slowest request's own flame graph: the access line names it, the sampler wrote it."""
    from obs.profiling.renderers import render_summary
    from obs.profiling.result import ProfileResult

    access, _ = read_access_lines(log_path)
    profiled = [r for r in access if r.get("profile")]
    echo("")
    if not profiled:
        echo(f"No request took over {DEMO_SLOW_PROFILE_THRESHOLD:g}s, so none kept a flame graph.")
        return
    top = max(profiled, key=lambda r: float(r.get("duration_ms", 0)))
    svg = Path(str(top["profile"]))
    index = svg.with_name(svg.name.removesuffix(".svg") + ".json")
    deadline = time.monotonic() + wait
    while not (index.is_file() and index.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)  # written by the service's sampler thread, off the request path
    echo(
        f"The slowest request's own flame graph ({top.get('duration_ms')} ms, "
        f"request_id={top.get('request_id')}): {svg}"
    )
    echo(f"  (obs profiles show {top.get('request_id')} --dir {svg.parent})")
    try:
        result = ProfileResult.load(index)
    except ObsError as exc:
        echo(f"  not readable yet: {exc}")
        return
    # The service's own function deepest in the commonest stack: what made this request slow.
    commonest = max(result.stacks, key=lambda stack: stack.count)
    own = [frame for frame in commonest.frames if "/obs/demo/service.py:" in frame]
    if own:
        total = {stat.frame: stat.total for stat in result.function_stats()}[own[-1]]
        echo(
            f"  slow in: {own[-1]}, on the stack in {100 * total / result.samples:.0f} % of samples"
        )
    for line in render_summary(result, limit=3).splitlines():
        echo("  " + line)


def _show_prometheus(echo: Callable[[str], None], port: int, duration: float) -> None:
    if not prom.wait_until_scraped(port, timeout=15):
        echo("Prometheus did not scrape the service in time; see prometheus.log.")
        return
    promql = (
        "histogram_quantile(0.99, sum by (le, http_route) "
        "(rate(http_server_request_duration_seconds_bucket[1m])))"
    )
    echo("")
    echo(f"Prometheus (real, with exemplar storage): {promql}")
    for row in prom.query(port, promql):
        value = row["value"][1]
        if value not in ("NaN", "+Inf"):
            echo(f"  {row['metric'].get('http_route', '?'):<22} p99 = {1000 * float(value):.1f} ms")
    found = [
        (float(exemplar["value"]), series["seriesLabels"], exemplar["labels"])
        for series in prom.exemplars(port, duration + 30)
        for exemplar in series.get("exemplars", [])
        if "request_id" in exemplar.get("labels", {})
    ]
    if found:
        value, series_labels, labels = max(found, key=lambda item: item[0])
        echo(
            f"  slowest exemplar Prometheus stored: {series_labels.get('http_route')} "
            f"le={series_labels.get('le')} took {1000 * value:.1f} ms, "
            f"request_id={labels['request_id']}"
        )


def _write_dashboards(out: Path) -> None:
    from obs.dashboards import DashboardOptions, write_files

    write_files(out / "dashboards", DashboardOptions(service_name="obs-demo"))
