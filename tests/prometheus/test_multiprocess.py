"""Multiprocess metrics, in fresh interpreters (prometheus_client reads the directory at import)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_python

FORKED_WORKERS = textwrap.dedent(
    """
    import os, sys, time
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render
    from obs.metrics import get_metrics
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse

    multiprocess.prepare()
    OM = "application/openmetrics-text; version=1.0.0"

    def totals():
        body, _ = render(None, OM)
        families = {f.name: f for f in parse(body.decode())}
        samples = families["http_server_request_duration_seconds"].samples
        count = sum(s.value for s in samples if s.name.endswith("_count"))
        ids = {s.exemplar.labels["request_id"] for s in samples if s.exemplar}
        errors = sum(s.value for s in families["http_server_exceptions"].samples)
        return count, ids, errors, families

    def worker(n, tag):
        metrics = get_metrics()
        child = metrics.request_duration.labels("GET", "/r", "200", "")
        for i in range(n):
            child.observe(0.001, {"request_id": f"{tag}-{i}"})
        metrics.exceptions.labels("/r", "E").inc(n)
        metrics.active_requests.labels("GET").inc()
        multiprocess.write_side_file()

    pids = []
    for tag, n in (("a", 3), ("b", 5)):
        pid = os.fork()
        if pid == 0:
            worker(n, tag)
            os._exit(0)
        os.waitpid(pid, 0)
        pids.append(pid)

    count, ids, errors, families = totals()
    assert count == 8 and errors == 8, (count, errors)
    assert ids == {"b-4"}, ids  # one bucket, latest wins across workers
    assert "python_gc_collections" not in families  # both workers are dead

    path = multiprocess.directory()
    for pid in pids:
        multiprocess.fold_dead_worker(pid)
    names = sorted(os.listdir(path))
    assert not [n for n in names if any(n.endswith(f"_{p}.db") or n.endswith(f"_{p}.json") for p in pids)], names
    assert "counter_aggregate.db" in names and "histogram_aggregate.db" in names, names
    count, ids, errors, families = totals()
    assert count == 8 and errors == 8 and ids == {"b-4"}, (count, errors, ids)
    assert "http_server_active_requests" not in families  # live-sum files of the dead: gone

    # Folding again (a second child_exit) must not count twice.
    multiprocess.fold_dead_worker(pids[0])
    assert totals()[0] == 8

    # A live process shows up with its process and GC metrics, labelled by pid.
    multiprocess.start_side_file()
    multiprocess.write_side_file()
    families = totals()[3]
    assert {s.labels["pid"] for s in families["process_cpu_seconds"].samples} == {str(os.getpid())}
    assert {s.labels["pid"] for s in families["python_gc_collections"].samples} == {str(os.getpid())}
    print("ok")
    """
)


def test_workers_add_up_exemplars_survive_and_dead_workers_fold(tmp_path: Path) -> None:
    proc = run_python(FORKED_WORKERS, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_prepare_empties_the_directory_but_keeps_its_own_files(tmp_path: Path) -> None:
    for name in (
        "counter_1.db",
        "histogram_aggregate.db",
        "obs_2.json",
        "x.json.3.tmp",
        "keep.txt",
    ):
        (tmp_path / name).write_text("")
    code = textwrap.dedent(
        """
        import os, pathlib, sys
        own = pathlib.Path(sys.argv[-1] if False else os.environ["PROMETHEUS_MULTIPROC_DIR"])
        (own / f"counter_{os.getpid()}.db").write_text("")
        from obs.prometheus import multiprocess
        multiprocess.prepare()
        print(sorted(os.listdir(own)) == sorted(["keep.txt", f"counter_{os.getpid()}.db"]))
        """
    )
    proc = run_python(code, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.stdout.strip() == "True", proc.stderr


def test_prometheus_client_imported_first_still_writes_files(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os
        import prometheus_client  # before the directory is known
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["DIR"]
        from obs.metrics import get_metrics
        get_metrics().exceptions.labels("/r", "E").inc()
        print(sorted(os.listdir(os.environ["DIR"])))
        """
    )
    proc = run_python(code, env={"DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "counter_" in proc.stdout


FAST_TEXT_MATCHES_COLLECT = textwrap.dedent(
    """
    import os
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render
    from obs.metrics import get_metrics
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families as parse

    multiprocess.prepare()
    for tag, n in (("a", 30), ("b", 50), ("c", 7)):
        pid = os.fork()
        if pid == 0:
            metrics = get_metrics()
            for i in range(n):
                route = f"/r/{i % 5}"
                metrics.request_duration.labels("GET", route, "200", "").observe(i / 100)
                metrics.exceptions.labels(route, "E").inc()
            metrics.active_requests.labels("GET").inc()
            os._exit(0)
        os.waitpid(pid, 0)
    registry = multiprocess.scrape_registry()

    def samples(text):
        return sorted(
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in parse(text) for s in f.samples
            if not f.name.startswith(("process_", "python_gc"))
        )

    fast, _ = render(registry, None)  # obs's text path
    slow = generate_latest(registry)  # prometheus_client over the same collector
    assert samples(fast.decode()) == samples(slow.decode())
    assert len(samples(fast.decode())) > 50
    print("ok")
    """
)


def test_fast_text_scrape_of_worker_files_matches_prometheus_client(tmp_path: Path) -> None:
    proc = run_python(FAST_TEXT_MATCHES_COLLECT, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


GROUPED_SCRAPE = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry
    from obs.metrics import get_metrics
    from obs.prometheus.exposition import render

    metrics = get_metrics(CollectorRegistry())
    histogram = metrics.duration_histogram((0.1, 1.0), ())
    for route in ("/a", "/b", "/c"):
        histogram.labels("GET", route, "200", "").observe(0.05)
    for accept in ("application/openmetrics-text; version=1.0.0", None):
        body, _ = render(None, accept)
        groups = []
        for line in body.decode().splitlines():
            if line.startswith("http_server_request_duration_seconds_"):
                labels = line[line.index("{") : line.index("}")]
                group = ",".join(p for p in labels.strip("{").split(",") if not p.startswith("le="))
                if not groups or groups[-1] != group:
                    groups.append(group)
        print(len(groups), len(set(groups)))
    """
)


def test_each_histogram_label_set_is_one_group_in_both_formats(tmp_path: Path) -> None:
    # OpenMetrics wants a label set's buckets, count and sum together; prometheus_client's
    # parser before 0.24 refuses the scrape otherwise (its merge writes all buckets first).
    directory = tmp_path / "mp"
    directory.mkdir(mode=0o700)
    result = run_python(GROUPED_SCRAPE, env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["3 3", "3 3"], result.stdout


LIVE_FOREIGN_WRITER = textwrap.dedent(
    """
    import os, subprocess, sys
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render
    from prometheus_client.parser import text_string_to_metric_families as parse

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    dead = os.fork()  # a worker of the old master that died unfolded
    if dead == 0:
        from obs.metrics import get_metrics
        get_metrics().exceptions.labels("/r", "E").inc(3)
        os._exit(0)
    os.waitpid(dead, 0)
    live = subprocess.Popen(  # a worker of the old master, still serving
        [sys.executable, "-c", "import sys; from obs.metrics import get_metrics; "
         "get_metrics().exceptions.labels('/r', 'E').inc(5); print('up', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert live.stdout.readline() == "up\\n"
    multiprocess.prepare()  # the new master's on_starting
    names = os.listdir(path)
    assert f"counter_{live.pid}.db" in names, names
    assert f"counter_{dead}.db" not in names and "counter_aggregate.db" in names, names
    body, _ = render(None, None)
    families = {f.name: f for f in parse(body.decode())}
    assert sum(s.value for s in families["http_server_exceptions"].samples) == 8
    live.stdin.close()
    live.wait(timeout=10)
    multiprocess.prepare()  # a later start: nobody writes there any more, the files go
    assert sorted(os.listdir(path)) == [".obs.lock"], os.listdir(path)
    print("ok")
    """
)


def test_prepare_keeps_the_files_of_live_processes_and_folds_the_dead(tmp_path: Path) -> None:
    """A gunicorn binary upgrade (USR2): the new master starts while the old one's workers
    serve; only the files of processes that are gone are cleared (folded)."""
    proc = run_python(LIVE_FOREIGN_WRITER, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


PLATFORM_INFO_ONCE = textwrap.dedent(
    """
    import os
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render
    from obs.metrics import get_metrics

    multiprocess.prepare()
    get_metrics().exceptions.labels("/r", "E").inc()
    multiprocess.write_side_file()
    up, down = os.pipe(), os.pipe()
    child = os.fork()
    if child == 0:  # a second live worker, with its side file
        multiprocess.write_side_file()
        os.write(up[1], b"x")
        os.read(down[0], 1)
        os._exit(0)
    os.read(up[0], 1)
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        body, _ = render(None, accept)
        lines = [l for l in body.decode().splitlines() if l.startswith("python_info")]
        assert len(lines) == 1 and 'implementation="CPython"' in lines[0], lines
        pids = {l.split('pid="')[1].split('"')[0] for l in body.decode().splitlines()
                if l.startswith("process_cpu_seconds")}
        assert pids == {str(os.getpid()), str(child)}, pids
    os.write(down[1], b"x")
    os.waitpid(child, 0)
    print("ok")
    """
)


def test_the_platform_collector_is_served_once_in_multiprocess_mode(tmp_path: Path) -> None:
    proc = run_python(PLATFORM_INFO_ONCE, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


SHARED_CARDINALITY_CAP = textwrap.dedent(
    """
    import io, os
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render
    from obs.wsgi import ROUTE_KEY, ObservabilityMiddleware
    from prometheus_client.parser import text_string_to_metric_families as parse

    multiprocess.prepare()

    def app(environ, start_response):
        environ[ROUTE_KEY] = environ["PATH_INFO"]  # a router that puts paths in templates
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def worker(paths):  # a worker's life: its own middleware, then exit (recycling)
        middleware = ObservabilityMiddleware(app, max_routes=5, max_label_sets=8, access_log=False)
        for path in paths:
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "",
                       "wsgi.input": io.BytesIO(), "SERVER_PROTOCOL": "HTTP/1.1"}
            b"".join(middleware(environ, lambda *a: None))

    def routes():
        body, _ = render(None, None)
        family = {f.name: f for f in parse(body.decode())}["http_server_request_duration_seconds"]
        return {s.labels["http_route"] for s in family.samples if s.name.endswith("_count")}

    # Three generations of workers, each with new paths: the caps hold across all of them.
    for generation in range(3):
        pid = os.fork()
        if pid == 0:
            worker(["/r0"] + [f"/g{generation}/{i}" for i in range(6)])
            os._exit(0)
        os.waitpid(pid, 0)
        multiprocess.fold_dead_worker(pid)
    seen = routes()
    assert "/r0" in seen and "_overflow" in seen, seen
    assert len(seen - {"_overflow"}) == 5, seen  # 5 routes in all, not 5 per worker
    print("ok")
    """
)


def test_the_cardinality_caps_are_shared_by_recycled_workers(tmp_path: Path) -> None:
    """``max_routes``/``max_label_sets`` count what earlier workers recorded (read at a
    worker's start), so recycling cannot add routes past the cap."""
    proc = run_python(SHARED_CARDINALITY_CAP, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip().endswith("ok")


FOLD_INTERRUPTED_BY_SIGCHLD = textwrap.dedent(
    """
    import os, signal, time
    from obs.prometheus import multiprocess
    from obs.prometheus.multiprocess import fold
    from obs.metrics import get_metrics

    multiprocess.prepare()
    path = multiprocess.directory()

    def worker(n, gate):
        child = get_metrics().request_duration.labels("GET", "/r", "200", "")
        for _ in range(n):
            child.observe(0.001)
        if gate is not None:
            os.read(gate, 1)  # exits when the parent says so
        os._exit(0)

    first = os.fork()
    if first == 0:
        worker(3, None)
    os.waitpid(first, 0)
    gate_read, gate_write = os.pipe()
    second = os.fork()
    if second == 0:
        worker(5, gate_read)
    time.sleep(0.5)  # both have written their files

    # As gunicorn 22's arbiter does: child_exit runs inside the SIGCHLD handler.
    handled = []
    def on_sigchld(signum, frame):
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid:
            handled.append(pid)
            fold.fold_dead_worker(pid)
    signal.signal(signal.SIGCHLD, on_sigchld)

    real_fold_file = fold._fold_file
    def fold_file_interrupted(*args):
        if not handled:  # the second worker dies while the first one is being folded
            os.write(gate_write, b"x")
            deadline = time.monotonic() + 10
            while not handled and time.monotonic() < deadline:
                time.sleep(0.01)
        return real_fold_file(*args)
    fold._fold_file = fold_file_interrupted

    assert fold.fold_dead_worker(first)
    assert handled == [second], handled
    names = sorted(os.listdir(path))
    assert not [n for n in names if n.endswith((f"_{first}.db", f"_{second}.db"))], names
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    count = registry.get_sample_value(
        "http_server_request_duration_seconds_count",
        {"http_request_method": "GET", "http_route": "/r", "http_response_status_code": "200",
         "error_type": ""},
    )
    assert count == 8, count
    print("ok")
    """
)


def test_a_fold_interrupted_by_sigchld_folds_both_workers(tmp_path: Path) -> None:
    """gunicorn 22 runs child_exit in its SIGCHLD handler: a worker that dies while the
    master folds another must not wait for the lock the interrupted fold holds (the master
    hung, and served nothing more, under gunicorn 22 with --max-requests)."""
    try:
        proc = run_python(
            FOLD_INTERRUPTED_BY_SIGCHLD, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the fold re-entered from the SIGCHLD handler deadlocked")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
