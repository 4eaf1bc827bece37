"""HTTP overview: the RED view of a service (rate, errors, duration) plus in-flight and sizes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, text, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

from obs.dashboards import promql as q
from obs.dashboards.common import (
    HTTP_UID,
    PROMETHEUS,
    ROUTE_UID,
    PanelBuilder,
    base_dashboard,
    dashboard_url,
    logs_link,
    route_link,
    target,
    target_variables,
)
from obs.dashboards.options import DashboardOptions
from obs.metrics import (
    ACTIVE_REQUESTS,
    REQUEST_BODY_SIZE,
    REQUEST_DURATION,
    RESPONSE_BODY_SIZE,
    ROUTE,
    STATUS,
)

#: The Profiles panel's fixed id, so every dashboard's "flame graph" link can open it.
PROFILES_PANEL_ID = 100
PROFILES_PANEL_URL = dashboard_url(HTTP_UID, f"viewPanel={PROFILES_PANEL_ID}")

PROFILES_TEXT = """\
**Which code is slow?** Metrics say *which route*; a flame graph says *which function*.

* Sample the running service from outside, no restart needed:
  `obs profile --help` lists the options (py-spy; in a container add the `SYS_PTRACE`
  capability, on a host run it with `sudo`).
* Open the resulting flame graph in speedscope, or send it to Pyroscope.
* With a Pyroscope data source configured (`obs dashboards generate --pyroscope-uid ...`),
  the *Flame graphs in Pyroscope* link at the top opens this service's continuous profiles.
"""


def _status_class(options: DashboardOptions) -> str:
    by_code = q.request_rate(options, q.ROUTE_MATCHERS, by=(STATUS,))
    # 200 -> "2xx": one series per class instead of one per status code.
    classed = f'label_replace({by_code}, "status_class", "${{1}}xx", "{STATUS}", "(\\\\d).*")'
    return f"sum by (status_class) ({classed})"


def _traffic(options: DashboardOptions) -> list[PanelBuilder]:
    rate_panel = (
        timeseries.Panel()
        .title("Request rate by status class")
        .description("How much traffic is the service serving, and how much of it fails?")
        .datasource(PROMETHEUS)
        .with_target(target(_status_class(options), "{{status_class}}"))
        .unit("reqps")
        .fill_opacity(20)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .data_links([logs_link(route_from_series=False)])
        .span(10)
        .height(8)
    )
    errors = (
        timeseries.Panel()
        .title("Error ratio (5xx)")
        .description("What fraction of requests does the server fail? Click through to the logs.")
        .datasource(PROMETHEUS)
        .with_target(target(q.error_ratio(options, q.ROUTE_MATCHERS), "5xx ratio"))
        .unit("percentunit")
        .min(0)
        .data_links([logs_link(route_from_series=False)])
        .span(10)
        .height(8)
    )
    active_expr = f"sum({q.selector(options.metric(ACTIVE_REQUESTS), *q.TARGET_MATCHERS)})"
    active = (
        stat.Panel()
        .title("Active requests")
        .description("How many requests are in flight right now (all routes)?")
        .datasource(PROMETHEUS)
        .with_target(target(active_expr, "in flight"))
        .unit("short")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .span(4)
        .height(8)
    )
    return [rate_panel, errors, active]


def _latency(options: DashboardOptions) -> list[PanelBuilder]:
    duration = options.metric(REQUEST_DURATION)
    percentiles = (
        timeseries.Panel()
        .title("Latency p50 / p90 / p99")
        .description(
            "How long do requests take? Dots are exemplars: click one to see that request's logs."
        )
        .datasource(PROMETHEUS)
        .targets(
            [
                target(
                    q.quantile(p, duration, q.ROUTE_MATCHERS), f"p{round(p * 100)}", exemplar=True
                )
                for p in (0.5, 0.9, 0.99)
            ]
        )
        .unit("s")
        .data_links([logs_link(route_from_series=False)])
        .span(12)
        .height(9)
    )
    by_route = (
        timeseries.Panel()
        .title("p99 latency by route")
        .description("Which routes are slow? Click a series for its logs or its drill-down.")
        .datasource(PROMETHEUS)
        .with_target(
            target(
                q.quantile(0.99, duration, q.ROUTE_MATCHERS, by=(ROUTE,)),
                f"{{{{{ROUTE}}}}}",
                exemplar=True,
            )
        )
        .unit("s")
        .data_links([logs_link(route_from_series=True), route_link()])
        .span(12)
        .height(9)
    )
    slowest_expr = (
        f"topk(10, {q.quantile(0.99, duration, q.ROUTE_MATCHERS, by=(ROUTE,), window='$__range')})"
    )
    slowest = (
        table.Panel()
        .title("Slowest routes (p99 over the time range)")
        .description("Which ten routes had the worst p99 over the whole time range?")
        .datasource(PROMETHEUS)
        .with_target(
            target(slowest_expr, f"{{{{{ROUTE}}}}}", instant=True, fmt=PromQueryFormat.TABLE)
        )
        .unit("s")
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "p99"}},
            )
        )
        .data_links(
            [
                db.DashboardLink("Drill down into this route").url(
                    dashboard_url(
                        ROUTE_UID, "${__url_time_range}", f"var-{ROUTE}=${{__data.fields.{ROUTE}}}"
                    )
                )
            ]
        )
        .span(24)
        .height(8)
    )
    return [percentiles, by_route, slowest]


def _size_panel(
    options: DashboardOptions, name: str, title: str, question: str
) -> timeseries.Panel:
    metric = options.metric(name)
    average = f"{q.sum_rate(f'{metric}_sum', q.ROUTE_MATCHERS)} / {q.sum_rate(f'{metric}_count', q.ROUTE_MATCHERS)}"
    return (
        timeseries.Panel()
        .title(title)
        .description(f"{question} (From the opt-in size histograms: `record_body_sizes=True`.)")
        .datasource(PROMETHEUS)
        .targets(
            [
                target(average, "average"),
                target(q.quantile(0.9, metric, q.ROUTE_MATCHERS), "p90"),
            ]
        )
        .unit("bytes")
        .span(12)
        .height(8)
    )


def build(options: DashboardOptions) -> db.Dashboard:
    """The HTTP overview dashboard."""
    dashboard = base_dashboard(
        options,
        uid=HTTP_UID,
        title="obs / HTTP overview",
        description="Rate, errors and duration of every route, with links to logs and profiles.",
        profile_panel_url=PROFILES_PANEL_URL,
    ).variables(target_variables(options))
    dashboard = dashboard.with_row(db.Row("Traffic and errors"))
    for panel in _traffic(options):
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(db.Row("Latency"))
    for panel in _latency(options):
        dashboard = dashboard.with_panel(panel)
    dashboard = dashboard.with_row(db.Row("Request and response sizes"))
    dashboard = dashboard.with_panel(
        _size_panel(options, REQUEST_BODY_SIZE, "Request body size", "How big are uploads?")
    ).with_panel(
        _size_panel(options, RESPONSE_BODY_SIZE, "Response body size", "How big are responses?")
    )
    profiles = (
        text.Panel()
        .id(PROFILES_PANEL_ID)
        .title("Profiles: capture a flame graph")
        .mode(TextMode.MARKDOWN)
        .content(PROFILES_TEXT)
        .span(24)
        .height(7)
    )
    return dashboard.with_row(db.Row("Profiles")).with_panel(profiles)
