"""OpenMetrics scrapes in multiprocess mode: obs's fast merge against prometheus_client's own
multiprocess collector and OpenMetrics encoder, in fresh interpreters (prometheus_client reads
the directory at import)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import run_python

WORKERS_THEN_COMPARE = textwrap.dedent(
    """
    import os, signal, sys, time
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.openmetrics import exposition
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
    from obs.metrics import get_metrics
    from obs.prometheus import multiprocess, render

    multiprocess.prepare()
    MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
             "mostrecent", "livemostrecent")
    ODD = ('say "hi"', "two\\nlines", "back\\\\slash", "naïve ☃ 日本")

    def worker(seed):
        registry = CollectorRegistry()
        metrics = get_metrics(registry)
        for r, odd in enumerate(ODD):
            child = metrics.request_duration.labels("GET", f"/r/{odd}", "200", "")
            for i in range(4):
                child.observe(0.003 * (i + seed + r), {"request_id": f"{seed}-{r}-{i}-{odd}"})
            metrics.exceptions.labels(odd, "E").inc(seed + 1)
        metrics.active_requests.labels("GET").inc(seed + 1)
        for mode in MODES:
            gauge = Gauge(f"g_{mode}", f'Mode "{mode}".', ["k"], registry=registry,
                          multiprocess_mode=mode)
            gauge.labels(ODD[seed % len(ODD)]).set(seed * 3 - 2)
            time.sleep(0.002)  # mostrecent: distinct timestamps
        Counter("jobs", "Jobs done.\\nSecond line.", ["kind"], registry=registry).labels(
            "a" if seed % 2 else 'b"').inc(seed + 0.5)
        Summary("work_seconds", "A summary.", registry=registry).observe(seed)
        Histogram("big", "Big bounds.", ["x"], registry=registry,
                  buckets=(1e7, 2.5e8)).labels(str(seed)).observe(3e7 * seed)
        multiprocess.write_side_file()

    dead = []
    for seed in range(3):
        pid = os.fork()
        if pid == 0:
            worker(seed)
            os._exit(0)
        os.waitpid(pid, 0)
        dead.append(pid)
    read, write = os.pipe()
    alive = os.fork()
    if alive == 0:  # a live worker: its live* gauges and process metrics stay
        worker(3)
        os.write(write, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(read, 1)

    def samples(body, skip_process=True):
        text = body.decode()
        assert text.endswith("# EOF\\n"), text[-50:]
        return normalised(parse(text), skip_process)

    def normalised(families, skip_process=True):
        out = []
        for family in families:
            if skip_process and family.name.startswith("process_"):
                continue  # read from /proc at each scrape: they move between two renders
            for s in family.samples:
                ex = s.exemplar
                out.append((family.name, family.type, family.documentation, s.name,
                            tuple(sorted(s.labels.items())), s.value,
                            None if ex is None else (tuple(sorted(ex.labels.items())),
                                                     ex.value, ex.timestamp)))
        return sorted(out)

    def grouped(body):
        # Each histogram label set's buckets, _count and _sum are consecutive lines.
        seen, last = set(), None
        for line in body.decode().splitlines():
            if line.startswith("#") or "_bucket" not in line and "_count" not in line \\
                    and "_sum" not in line:
                last = None
                continue
            name = line.split("{")[0].split(" ")[0]
            base = name.rsplit("_", 1)[0]
            labels = line[line.find("{"):line.find("}") + 1] if "{" in line else ""
            group = (base, ",".join(p for p in labels.strip("{}").split(",")
                                    if not p.startswith("le=")))
            if group != last:
                assert group not in seen, group
                seen.add(group)
                last = group
        return len(seen)

    def check(stage):
        ours_registry = multiprocess.scrape_registry()
        fast = render.render_openmetrics(ours_registry)
        slow = exposition.generate_latest(ours_registry)  # collect(): prometheus_client's merge
        assert fast != slow, stage  # the fast path ran
        assert samples(fast) == samples(slow), stage
        assert grouped(fast) >= len(ODD) * 2, stage
        exemplars = [s for s in samples(fast) if s[-1] is not None]
        assert len(exemplars) >= len(ODD), (stage, exemplars)
        plain = CollectorRegistry()
        MultiProcessCollector(plain, path=multiprocess.directory())
        fast_plain = render.render_openmetrics(plain)
        assert fast_plain != exposition.generate_latest(plain), stage
        # Not through the parser: before 0.24, prometheus_client's parser refuses its own
        # multiprocess OpenMetrics (every bucket before the first _count).
        assert samples(fast_plain, False) == normalised(plain.collect(), False), stage
        assert not [s for s in samples(fast_plain, False) if s[-1] is not None]
        names = {s[0] for s in samples(fast)}
        assert {"jobs", "g_all", "g_livesum", "work_seconds", "big",
                "http_server_request_duration_seconds", "python_gc_collections"} <= names, names
        assert any(s[3] == "jobs_total" for s in samples(fast))
        return len(samples(fast))

    try:
        before = check("four workers, three dead")
        for pid in dead:
            assert multiprocess.fold_dead_worker(pid)
        assert "histogram_aggregate.db" in os.listdir(multiprocess.directory())
        after = check("dead workers folded")
        print("ok", before, after)
    finally:
        os.kill(alive, signal.SIGKILL)
        os.waitpid(alive, 0)
    """
)


def test_openmetrics_scrape_of_worker_files_matches_prometheus_client(tmp_path: Path) -> None:
    directory = tmp_path / "mp"
    directory.mkdir(mode=0o700)
    proc = run_python(
        WORKERS_THEN_COMPARE, env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("ok"), proc.stdout


UTF8_NAMES = textwrap.dedent(
    """
    import os
    from obs.prometheus.multiprocess import ensure_multiprocess_values
    ensure_multiprocess_values()
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.openmetrics import exposition
    from obs.prometheus import render

    registry = CollectorRegistry()
    Counter("my.jobs", "Dotted.", ["k.x"], registry=registry).labels("v").inc()
    Histogram("lat.s", "H", ["a"], registry=registry, buckets=(1,)).labels("b").observe(0.5)
    Counter("plain", "Plain.", registry=registry).inc(2)
    plain = CollectorRegistry()
    MultiProcessCollector(plain, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for escaping in (exposition.UNDERSCORES, exposition.ALLOWUTF8):
        ours = render.render_openmetrics(plain, escaping)
        theirs = exposition.generate_latest(plain, escaping)
        # The same lines (prometheus_client's merge writes a histogram's _sum first).
        assert ours != theirs and sorted(ours.splitlines()) == sorted(theirs.splitlines()), ours
    print("ok")
    """
)


def test_names_the_encoder_must_escape_are_left_to_it(tmp_path: Path) -> None:
    directory = tmp_path / "mp"
    directory.mkdir(mode=0o700)
    proc = run_python(UTF8_NAMES, env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok", proc.stdout


CALLS_PER_SCRAPE = textwrap.dedent(
    """
    import os, sys
    from prometheus_client.multiprocess import MultiProcessCollector
    from obs.metrics import get_metrics
    from obs.prometheus import multiprocess
    from obs.prometheus.exposition import render

    multiprocess.prepare()
    for seed in range(3):
        pid = os.fork()
        if pid == 0:
            metrics = get_metrics()
            for r in range(100):
                for status in ("200", "500"):
                    child = metrics.request_duration.labels("GET", f"/r{r}/{{id}}", status, "")
                    for i in range(3):
                        child.observe(0.004 * (i + seed + r % 9), {"request_id": f"{seed}-{r}-{i}"})
            multiprocess.write_side_file()
            os._exit(0)
        os.waitpid(pid, 0)
    registry = multiprocess.scrape_registry()

    def calls(accept):
        count = 0
        def profile(frame, event, arg):
            nonlocal count
            if event in ("call", "c_call"):
                count += 1
        render(registry, accept)  # warm: keys parsed once per process
        sys.setprofile(profile)
        try:
            body, _ = render(registry, accept)
        finally:
            sys.setprofile(None)
        return count, body

    text, _ = calls(None)
    om, body = calls("application/openmetrics-text; version=1.0.0")
    assert body.count(b" # {request_id=") >= 200, body[-300:]
    def refuse(*args, **kwargs):
        raise AssertionError("prometheus_client's merge ran")
    MultiProcessCollector.merge = staticmethod(refuse)
    render(registry, "application/openmetrics-text; version=1.0.0")  # the fast path only
    print(text, om)
    """
)


def test_openmetrics_scrape_costs_about_what_the_text_one_does(tmp_path: Path) -> None:
    # Function calls are a deterministic measure of a render's cost where wall-clock time on a
    # shared machine is not. 1,250 label sets from four workers (bench/exposition.py's
    # directory): 824,431 calls for text, 918,116 for OpenMetrics (1.11x); through
    # prometheus_client's merge and encoder, as before this path existed, 6,166,750 (7.5x).
    directory = tmp_path / "mp"
    directory.mkdir(mode=0o700)
    proc = run_python(CALLS_PER_SCRAPE, env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert proc.returncode == 0, proc.stderr
    text, om = (int(n) for n in proc.stdout.split())
    assert om <= 1.5 * text, (text, om)
