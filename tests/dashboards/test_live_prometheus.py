"""Against a real Prometheus scraping the example app under load, every query returns data.

Starts ``stack_app.py`` (the obs ASGI middleware with the size histograms on) and Debian's
``prometheus`` with exemplar storage, on loopback ports, with a 1 s scrape interval; load is a
bounded loop of requests from this process. Every expression of every dashboard and alert rule
(variables substituted) must return a non-empty result; Prometheus loads the generated
``alerts.yml``, so every recording rule and every alert expression (thresholds at 0) returns data;
exemplars carry request ids that appear in the app's access log; the error ratio matches the
traffic sent, and so do each route's request rate and the rate by status class; quantiles are
ordered; ``/metrics`` is absent from the RED series; every metric name a dashboard uses appears
in the app's exposition; and the logs dashboard's route filter keeps the app's own lines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from obs.dashboards.logs import logql
from obs.dashboards.options import REQUEST_ID
from obs.metrics import REQUEST_DURATION, ROUTE
from tests.conftest import free_port

from .exprs import metric_names, prometheus_exprs, substitute

JOB = "obs-stack-test"
VALUES = {"job": JOB, "instance": ".+", "http_route": ".+", "level": ".*"}
APP = Path(__file__).with_name("stack_app.py")
#: The route templates of everything the load fixture requests.
LOAD_ROUTES = {"/orders/{order_id}", "/upload", "/missing", "/fail", "/boom"}
DEADLINE = 45.0  # seconds to wait for every query to return data
#: Each load round requests these routes once, and every third round also /fail and /boom.
EVERY_ROUND = ("/orders/{order_id}", "/upload", "/missing")
EVERY_THIRD_ROUND = ("/fail", "/boom")
#: The rate window of the per-route checks: twenty 1 s scrapes.
RATE_WINDOW = 20


def wait_until(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def whole_lines(path: Path) -> list[str]:
    """The lines of a log the app is still writing, but a last one not yet complete."""
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


@pytest.fixture(scope="module")
def app_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the app's JSON log lines (stdout) go."""
    return tmp_path_factory.mktemp("app") / "stdout.jsonl"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, app_logs: Path) -> Iterator[str]:
    port = free_port()
    stderr = tmp_path_factory.mktemp("app") / "stderr.txt"
    with stderr.open("wb") as sink, app_logs.open("wb") as logs:
        proc = subprocess.Popen([sys.executable, str(APP), str(port)], stdout=logs, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/metrics", timeout=1).status_code == 200,
            15,
            f"the app (its stderr: {stderr})",
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def prometheus_url(
    prometheus_bin: str,
    app_url: str,
    generated: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    (work / "alerts.yml").write_text(generated["alerts.yml"])  # recording rules and alerts
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "alerts.yml")],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [app_url.removeprefix("http://")]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30, "Prometheus"
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@dataclass
class Traffic:
    """What the load sent: the wall-clock start of each round."""

    rounds: list[float] = field(default_factory=list)
    running: bool = True

    def per_second(self, start: float, end: float) -> float:
        """Rounds per second started in ``[start, end)``."""
        return sum(start <= t < end for t in self.rounds) / (end - start)


@pytest.fixture(scope="module")
def load(app_url: str) -> Iterator[Traffic]:
    """Requests to every route, a few dozen per second, until the module's tests are done."""
    stop = threading.Event()
    traffic = Traffic()

    def run() -> None:
        end = time.monotonic() + DEADLINE + 90  # bounded even if a test hangs
        with httpx.Client(base_url=app_url, timeout=5) as client:
            i = 0
            while not stop.is_set() and time.monotonic() < end:
                i += 1
                traffic.rounds.append(time.time())
                client.get(f"/orders/{i}")
                client.post("/upload", content=b"y" * (i % 2000))
                client.get("/missing")
                if i % 3 == 0:
                    client.get("/fail")
                    client.get("/boom")
                time.sleep(0.02)
        traffic.running = False

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield traffic
    stop.set()
    thread.join(timeout=10)


def query(prometheus_url: str, expr: str) -> list[Any]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def all_expressions(
    dashboards: dict[str, dict[str, Any]], generated: dict[str, str]
) -> dict[str, str]:
    exprs = {
        where: substitute(expr, VALUES)
        for dashboard in dashboards.values()
        for where, expr in prometheus_exprs(dashboard)
    }
    for group in yaml.safe_load(generated["alerts.yml"])["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                exprs[f"alerts.yml / {rule['record']}"] = f'{rule["record"]}{{job="{JOB}"}}'
                continue
            # A healthy app must not fire the alerts; with every threshold and the traffic guard
            # at 0, the whole rule, every window included, must return data.
            at_zero = re.sub(r">\s*\([^)]*\)", ">= 0", rule["expr"])
            at_zero = re.sub(r">=\s*\d+", ">= 0", at_zero)
            assert at_zero != rule["expr"]
            exprs[f"alerts.yml / {rule['alert']}"] = at_zero
    return exprs


@pytest.mark.usefixtures("load")
def test_every_query_returns_data(
    prometheus_url: str, dashboards: dict[str, dict[str, Any]], generated: dict[str, str]
) -> None:
    exprs = all_expressions(dashboards, generated)
    empty: dict[str, str] = dict(exprs)

    def everything_has_data() -> bool:
        for where, expr in list(empty.items()):
            if query(prometheus_url, expr):
                del empty[where]
        return not empty

    end = time.monotonic() + DEADLINE
    while time.monotonic() < end and not everything_has_data():
        time.sleep(1)
    assert not empty, f"queries without data after {DEADLINE}s: {empty}"


@pytest.mark.usefixtures("load")
def test_exemplars_carry_request_ids_of_logged_requests(
    prometheus_url: str, app_logs: Path
) -> None:
    bucket = f"{REQUEST_DURATION}_bucket"

    def exemplars() -> list[Any]:
        now = time.time()
        response = httpx.get(
            f"{prometheus_url}/api/v1/query_exemplars",
            params={"query": f'{bucket}{{job="{JOB}"}}', "start": now - 300, "end": now + 1},
            timeout=5,
        )
        return list(response.json()["data"])

    wait_until(lambda: bool(exemplars()), DEADLINE, "exemplars in Prometheus")
    snapshot = exemplars()  # taken before the log is read: every id in it was logged already
    labels = [e["labels"] for series in snapshot for e in series["exemplars"]]
    assert labels and all(REQUEST_ID in label for label in labels)
    # Each exemplar's request id is a request the app logged: the link to the logs finds it.
    logged = {
        json.loads(line).get(REQUEST_ID) for line in whole_lines(app_logs) if line.startswith("{")
    }
    # The scrape (route "_unmatched" here: the app gives /metrics no template) has no access
    # line; whether it is counted at all is checked on its own below.
    ids = {
        e["labels"][REQUEST_ID]
        for series in snapshot
        if series["seriesLabels"].get("http_route") in LOAD_ROUTES
        for e in series["exemplars"]
    }
    assert ids and ids <= logged, sorted(ids - logged)[:3]


def test_every_dashboard_metric_is_exposed_by_the_app(
    app_url: str, dashboards: dict[str, dict[str, Any]]
) -> None:
    httpx.post(f"{app_url}/upload", content=b"z")  # make sure every family has a sample
    httpx.get(f"{app_url}/boom")
    exposition = httpx.get(f"{app_url}/metrics").text
    exposed = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[ {]", exposition, flags=re.M))
    used = {
        name
        for dashboard in dashboards.values()
        for _, expr in prometheus_exprs(dashboard)
        for name in metric_names(expr)
    }
    assert used - exposed == set()


def _value(prometheus_url: str, expr: str) -> float:
    result = query(prometheus_url, expr)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


@pytest.mark.usefixtures("load")
def test_error_ratio_and_quantiles_match_the_traffic_sent(
    prometheus_url: str, dashboards: dict[str, dict[str, Any]]
) -> None:
    """Each load round sends 3 requests and, every third round, a 503 and a 500: 2/11 fail."""
    exprs = dict(prometheus_exprs(dashboards["http-overview.json"]))
    ratio = substitute(exprs["obs / HTTP overview / Error ratio (5xx) / A"], VALUES)
    wait_until(lambda: bool(query(prometheus_url, ratio)), DEADLINE, "the error ratio")
    time.sleep(5)  # a few more scrapes, so the 1-minute window holds many rounds
    assert abs(_value(prometheus_url, ratio) - 2 / 11) < 0.03
    p50, p90, p99 = (
        _value(
            prometheus_url,
            substitute(exprs[f"obs / HTTP overview / Latency p50 / p90 / p99 / {ref}"], VALUES),
        )
        for ref in "ABC"
    )
    assert 0 < p50 <= p90 <= p99 < 1


@pytest.mark.usefixtures("load")
def test_metrics_scrapes_are_absent_from_red_series(prometheus_url: str) -> None:
    """The scrape is not traffic: the RED series hold exactly the routes the load sends.

    The app gives ``/metrics`` no route template, so a counted scrape shows up as the route
    ``_unmatched`` (the load sends no unmatched request). No dashboard or rule filters it out:
    this depends on the middleware excluding ``/metrics`` by default (built on another branch)
    and fails until that lands.
    """
    series = f'{REQUEST_DURATION}_count{{job="{JOB}"}}'
    wait_until(lambda: bool(query(prometheus_url, series)), DEADLINE, "RED series")
    routes = {r["metric"].get("http_route") for r in query(prometheus_url, series)}
    assert routes == LOAD_ROUTES, routes - LOAD_ROUTES


def _by_label(prometheus_url: str, expr: str, label: str, at: float) -> dict[str, float]:
    response = httpx.get(
        f"{prometheus_url}/api/v1/query", params={"query": expr, "time": at}, timeout=5
    )
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in body["data"]["result"]}


def test_each_routes_rate_matches_the_traffic_sent(
    prometheus_url: str, dashboards: dict[str, dict[str, Any]], load: Traffic
) -> None:
    """The drill-down's responses by status code, per route, and the overview's rate by status
    class, against the rounds the load sent in the same window (Prometheus evaluates at a
    time *at* a few scrapes in the past, so every request of the window has been scraped)."""
    drill = dict(prometheus_exprs(dashboards["route-drilldown.json"]))
    overview = dict(prometheus_exprs(dashboards["http-overview.json"]))
    values = {**VALUES, "__rate_interval": f"{RATE_WINDOW}s"}
    wait_until(
        lambda: bool(load.rounds) and time.time() - load.rounds[0] > RATE_WINDOW + 8,
        DEADLINE + RATE_WINDOW,
        f"{RATE_WINDOW + 8} s of load",
    )
    at = time.time() - 3
    assert load.running, "the load ended before the rates could be checked"
    sent = load.per_second(at - RATE_WINDOW, at)
    assert sent > 1, sent
    status_of = {"/orders/{order_id}": "200", "/upload": "200", "/missing": "404",
                 "/fail": "503", "/boom": "500"}  # fmt: skip
    by_status = drill["obs / Route drill-down / Responses by status code / A"]
    for route, status in status_of.items():
        rates = _by_label(
            prometheus_url,
            # As Grafana's Prometheus data source escapes a chosen value for ``=~``.
            substitute(by_status, {**values, "http_route": re.escape(route).replace("\\", "\\\\")}),
            "http_response_status_code",
            at,
        )
        expected = sent if route in EVERY_ROUND else sent / 3
        assert rates.keys() == {status}, (route, rates)
        assert rates[status] == pytest.approx(expected, rel=0.2), (route, rates, sent)
    classes = _by_label(
        prometheus_url,
        substitute(overview["obs / HTTP overview / Request rate by status class / A"], values),
        "status_class",
        at,
    )
    assert classes.keys() == {"2xx", "4xx", "5xx"}, classes
    assert classes["2xx"] == pytest.approx(2 * sent, rel=0.2), (classes, sent)
    assert classes["4xx"] == pytest.approx(sent, rel=0.2), (classes, sent)
    assert classes["5xx"] == pytest.approx(2 * sent / 3, rel=0.2), (classes, sent)


def _loki_route_filter(line: dict[str, Any], route_regex: str) -> bool:
    """What the logs panel's ``| json | http_route=~"..."`` keeps: a fully matching value, a
    missing field counting as empty."""
    return re.fullmatch(route_regex, str(line.get(ROUTE, ""))) is not None


@pytest.mark.usefixtures("load")
def test_the_logs_route_filter_keeps_the_apps_own_lines(app_logs: Path) -> None:
    """Choosing the route ``/fail`` in the logs dashboard shows, for each of its requests, the
    access line and the app's own ``payment provider refused`` line, and no other route's."""
    assert f'| json | {ROUTE}=~"$http_route"' in logql()
    wait_until(lambda: "payment provider refused" in app_logs.read_text(), DEADLINE, "a /fail line")
    lines = [json.loads(t) for t in whole_lines(app_logs) if t.startswith("{")]
    kept = [line for line in lines if _loki_route_filter(line, re.escape("/fail"))]
    events: dict[str, set[str]] = {}
    for line in kept:
        events.setdefault(line[REQUEST_ID], set()).add(line["event"])
    app_lines = [line for line in lines if line["event"] == "payment provider refused"]
    assert app_lines and all(line[REQUEST_ID] in events for line in app_lines)
    complete = [ids for ids in events.values() if ids == {"request", "payment provider refused"}]
    # Every /fail request whose access line is written shows both lines, nothing else.
    assert len(complete) >= len(events) - 1, events
    assert {line["path"] for line in kept if line["event"] == "request"} == {"/fail"}
