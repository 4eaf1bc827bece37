"""Route drill-down: one route's latency distribution, statuses and exceptions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from obs.dashboards import promql as q
from obs.dashboards.common import (
    PROMETHEUS,
    ROUTE_UID,
    base_dashboard,
    logs_link,
    target,
    target_variables,
)
from obs.dashboards.http_overview import PROFILES_PANEL_URL
from obs.dashboards.options import DashboardOptions
from obs.dashboards.panels import status_class_colours
from obs.metrics import ERROR_TYPE, EXCEPTIONS, REQUEST_DURATION, STATUS


def _latency_heatmap(options: DashboardOptions) -> heatmap.Panel:
    buckets = f"{options.metric(REQUEST_DURATION)}_bucket"
    expr = q.sum_rate(buckets, q.ROUTE_MATCHERS, by=("le",))
    return (
        heatmap.Panel()
        .title("Latency distribution")
        .description(
            "Where do this route's durations cluster, and are there slow outliers? "
            "Exemplar dots link to the request's logs."
        )
        .datasource(PROMETHEUS)
        .with_target(target(expr, "{{le}}", exemplar=True, fmt=PromQueryFormat.HEATMAP))
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .cell_values(heatmap.CellValues().unit("reqps"))
        .tooltip(heatmap.HeatmapTooltip().mode(cm.TooltipDisplayMode.SINGLE).y_histogram(True))
        .data_links([logs_link(options, route_from_series=False)])
        .span(24)
        .height(10)
    )


def _statuses(options: DashboardOptions) -> timeseries.Panel:
    expr = q.request_rate(options, q.ROUTE_MATCHERS, by=(STATUS,))
    panel = (
        timeseries.Panel()
        .title("Responses by status code")
        .description("Which status codes does this route answer with, and how often?")
        .datasource(PROMETHEUS)
        .with_target(target(expr, f"{{{{{STATUS}}}}}"))
        .unit("reqps")
        .fill_opacity(20)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .data_links([logs_link(options, route_from_series=False)])
        .span(12)
        .height(9)
    )
    return status_class_colours(panel, by_code=True)


def _exceptions(options: DashboardOptions) -> timeseries.Panel:
    expr = q.sum_rate(options.metric(EXCEPTIONS), q.ROUTE_MATCHERS, by=(ERROR_TYPE,))
    return (
        timeseries.Panel()
        .title("Exceptions by type")
        .description("Which exceptions escape this route's handler? Click through to the logs.")
        .datasource(PROMETHEUS)
        .with_target(target(expr, f"{{{{{ERROR_TYPE}}}}}"))
        .unit("ops")
        .draw_style(cm.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .data_links([logs_link(options, route_from_series=False)])
        .span(12)
        .height(9)
    )


def build(options: DashboardOptions) -> db.Dashboard:
    """The route drill-down dashboard (one route at a time: the route variable is single)."""
    dashboard = base_dashboard(
        options,
        uid=ROUTE_UID,
        title="obs / Route drill-down",
        description="One route: latency heatmap, status codes and exceptions.",
        profile_panel_url=PROFILES_PANEL_URL,
    ).variables(target_variables(options, route_multi=False))
    return (
        dashboard.with_panel(_latency_heatmap(options))
        .with_panel(_statuses(options))
        .with_panel(_exceptions(options))
    )
