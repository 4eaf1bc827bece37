"""obs's panel builders, public so that a team's ``*.dashboard.py`` reuses them.

Each function returns a grafana-foundation-sdk panel builder reading the obs metric catalogue
through *options* (prefix, data source uids, objectives). Put them in any dashboard::

    from grafana_foundation_sdk.builders import dashboard as db
    from obs.dashboards import DashboardOptions, panels

    options = DashboardOptions(service_name="shop")
    dashboard = (
        db.Dashboard("Shop / checkout")
        .variables(panels.target_variables(options))
        .with_panel(panels.request_rate(options))
        .with_panel(panels.latency_percentiles(options))
    )

Panel ids are left out: :func:`obs.dashboards.render.dashboard_data` numbers them uniquely.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from obs.dashboards import promql as q
from obs.dashboards.common import (
    PROMETHEUS,
    logs_link,
    route_link,
    target,
    target_variables,
)
from obs.dashboards.options import DashboardOptions
from obs.metrics import ACTIVE_REQUESTS, REQUEST_DURATION, ROUTE, STATUS

__all__ = [
    "STATUS_CLASS_COLOURS",
    "active_requests",
    "body_size",
    "error_budget_remaining",
    "error_ratio",
    "latency_by_route",
    "latency_percentiles",
    "request_rate",
    "slo_burn_rates",
    "slowest_routes",
    "status_class_colours",
    "status_class_rate",
    "target",
    "target_variables",
]

#: Fixed colours per status class, the same on every panel (Grafana's named palette colours).
STATUS_CLASS_COLOURS: dict[str, str] = {
    "1xx": "blue",
    "2xx": "green",
    "3xx": "purple",
    "4xx": "orange",
    "5xx": "red",
}


def _colour(colour: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})


def status_class_colours(panel: timeseries.Panel, *, by_code: bool = False) -> timeseries.Panel:
    """Give *panel*'s series their status class colour (series named ``2xx`` or ``200``)."""
    for status_class, colour in STATUS_CLASS_COLOURS.items():
        if by_code:
            panel = panel.override_by_regexp(f"^{status_class[0]}..$", [_colour(colour)])
        else:
            panel = panel.override_by_name(status_class, [_colour(colour)])
    return panel


def _legend() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .show_legend(True)
        .display_mode(cm.LegendDisplayMode.LIST)
        .placement(cm.LegendPlacement.BOTTOM)
    )


def _timeseries(title: str, question: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(question)
        .datasource(PROMETHEUS)
        .legend(_legend())
    )


def status_class_rate(options: DashboardOptions) -> str:
    """Requests per second by status class (``2xx``...), from the status code label."""
    by_code = q.request_rate(options, q.ROUTE_MATCHERS, by=(STATUS,))
    # 200 -> "2xx": one series per class instead of one per status code.
    classed = f'label_replace({by_code}, "status_class", "${{1}}xx", "{STATUS}", "(\\\\d).*")'
    return f"sum by (status_class) ({classed})"


def request_rate(options: DashboardOptions) -> timeseries.Panel:
    """Stacked requests per second by status class, in fixed class colours."""
    panel = (
        _timeseries(
            "Request rate by status class",
            "How much traffic is the service serving, and how much of it fails?",
        )
        .with_target(target(status_class_rate(options), "{{status_class}}"))
        .unit("reqps")
        .fill_opacity(20)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .data_links([logs_link(options, route_from_series=False)])
        .span(10)
        .height(8)
    )
    return status_class_colours(panel)


def error_ratio(options: DashboardOptions) -> timeseries.Panel:
    """The 5xx ratio of the selected routes (0 while nothing fails)."""
    return (
        _timeseries(
            "Error ratio (5xx)",
            "What fraction of requests does the server fail? Click through to the logs.",
        )
        .with_target(target(q.error_ratio(options, q.ROUTE_MATCHERS), "5xx ratio"))
        .unit("percentunit")
        .min(0)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.FIXED).fixed_color("red"))
        .data_links([logs_link(options, route_from_series=False)])
        .span(10)
        .height(8)
    )


def active_requests(options: DashboardOptions) -> stat.Panel:
    """Requests in flight now, over every route."""
    expr = f"sum({q.selector(options.metric(ACTIVE_REQUESTS), *q.TARGET_MATCHERS)})"
    return (
        stat.Panel()
        .title("Active requests")
        .description("How many requests are in flight right now (all routes)?")
        .datasource(PROMETHEUS)
        .with_target(target(expr, "in flight"))
        .unit("short")
        .graph_mode(cm.BigValueGraphMode.AREA)
        .span(4)
        .height(8)
    )


def latency_percentiles(options: DashboardOptions) -> timeseries.Panel:
    """p50 / p90 / p99 with exemplars, each bounded by the exact mean (see ``bounded_quantile``)."""
    duration = options.metric(REQUEST_DURATION)
    return (
        _timeseries(
            "Latency p50 / p90 / p99",
            "How long do requests take? Dots are exemplars: click one to see that request's logs.",
        )
        .targets(
            [
                target(
                    q.bounded_quantile(p, duration, q.ROUTE_MATCHERS),
                    f"p{round(p * 100)}",
                    exemplar=True,
                )
                for p in (0.5, 0.9, 0.99)
            ]
        )
        .unit("s")
        .data_links([logs_link(options, route_from_series=False)])
        .span(12)
        .height(9)
    )


def latency_by_route(options: DashboardOptions) -> timeseries.Panel:
    """p99 per route, linking each series to its logs and its drill-down."""
    duration = options.metric(REQUEST_DURATION)
    return (
        _timeseries(
            "p99 latency by route",
            "Which routes are slow? Click a series for its logs or its drill-down.",
        )
        .with_target(
            target(
                q.bounded_quantile(0.99, duration, q.ROUTE_MATCHERS, by=(ROUTE,)),
                f"{{{{{ROUTE}}}}}",
                exemplar=True,
            )
        )
        .unit("s")
        .data_links([logs_link(options, route_from_series=True), route_link()])
        .span(12)
        .height(9)
    )


def slowest_routes(options: DashboardOptions) -> table.Panel:
    """The ten routes with the worst p99 over the time range, linking to their drill-down."""
    duration = options.metric(REQUEST_DURATION)
    p99 = q.bounded_quantile(0.99, duration, q.ROUTE_MATCHERS, by=(ROUTE,), window="$__range")
    return (
        table.Panel()
        .title("Slowest routes (p99 over the time range)")
        .description("Which ten routes had the worst p99 over the whole time range?")
        .datasource(PROMETHEUS)
        .with_target(
            target(f"topk(10, {p99})", f"{{{{{ROUTE}}}}}", instant=True, fmt=PromQueryFormat.TABLE)
        )
        .unit("s")
        # The schema requires cellOptions in a table's field config; the SDK leaves it out.
        .cell_options(cm.TableAutoCellOptions())
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "p99"}},
            )
        )
        .data_links([route_link(from_table=True)])
        .span(24)
        .height(8)
    )


def body_size(options: DashboardOptions, name: str, title: str, question: str) -> timeseries.Panel:
    """Average and p90 of the size histogram *name* (opt-in: ``record_body_sizes=True``)."""
    metric = options.metric(name)
    return (
        _timeseries(
            title, f"{question} (From the opt-in size histograms: `record_body_sizes=True`.)"
        )
        .targets(
            [
                target(q.mean(metric, q.ROUTE_MATCHERS), "average"),
                target(q.bounded_quantile(0.9, metric, q.ROUTE_MATCHERS), "p90"),
            ]
        )
        .unit("bytes")
        .span(12)
        .height(8)
    )


def _budget_ratio(options: DashboardOptions, objective: str, window: str) -> str:
    """The bad ratio of *objective* ("errors" or "slow") over *window*, for the selection."""
    duration = options.metric(REQUEST_DURATION)
    total = q.request_rate(options, q.TARGET_MATCHERS, window=window)
    if objective == "errors":
        return q.error_ratio(options, q.TARGET_MATCHERS, window=window)
    le = f'le="{float(options.latency_slo_seconds)!r}"'
    fast = q.sum_rate(f"{duration}_bucket", (*q.TARGET_MATCHERS, le), window=window)
    return f"1 - ({fast} / {total})"


def error_budget_remaining(options: DashboardOptions) -> stat.Panel:
    """How much of each error budget is left over the dashboard's time range (1 = untouched)."""
    targets: list[cogbuilder.Builder[Dataquery]] = []
    budgets = (
        ("errors", 1 - options.availability_slo, "availability"),
        ("slow", 1 - options.latency_slo_ratio, "latency"),
    )
    for objective, budget, legend in budgets:
        ratio = _budget_ratio(options, objective, "$__range")
        targets.append(target(f"1 - ({ratio}) / {budget:.6g}", legend, instant=True))
    return (
        stat.Panel()
        .title("Error budget remaining (time range)")
        .description(
            f"Share of the budget left: availability {options.availability_slo * 100:g}% "
            f"(5xx), latency {options.latency_slo_ratio * 100:g}% within "
            f"{options.latency_slo_seconds:g}s. Below 0 the objective is missed."
        )
        .datasource(PROMETHEUS)
        .targets(targets)
        .unit("percentunit")
        .thresholds(
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    dm.Threshold(value=None, color="red"),
                    dm.Threshold(value=0.25, color="orange"),
                    dm.Threshold(value=0.5, color="green"),
                ]
            )
        )
        .span(8)
        .height(8)
    )


def slo_burn_rates(options: DashboardOptions) -> timeseries.Panel:
    """Burn rate of both budgets over 1 h and 6 h, with the 14.4x and 6x paging lines."""
    targets: list[cogbuilder.Builder[Dataquery]] = []
    budgets = (("errors", 1 - options.availability_slo), ("slow", 1 - options.latency_slo_ratio))
    for objective, budget in budgets:
        for window in ("1h", "6h"):
            expr = f"({_budget_ratio(options, objective, window)}) / {budget:.6g}"
            targets.append(target(expr, f"{objective} {window}"))
    return (
        _timeseries(
            "SLO burn rate",
            "How many times faster than allowed is each budget burning? Above 14.4 (1 h) or "
            "6 (6 h) the page alert fires.",
        )
        .targets(targets)
        .unit("x")
        .min(0)
        .thresholds(
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    dm.Threshold(value=None, color="green"),
                    dm.Threshold(value=6, color="orange"),
                    dm.Threshold(value=14.4, color="red"),
                ]
            )
        )
        .thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE))
        .data_links([logs_link(options, route_from_series=False)])
        .span(16)
        .height(8)
    )
