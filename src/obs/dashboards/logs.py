"""Logs: log volume by level next to the 5xx rate, and the JSON access logs from Loki.

Loki labels stay low-cardinality (``service`` and ``level``); the request id and the route are
fields of the JSON line, matched with a line filter and the ``json`` parser.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs, loki, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from obs.config import LOG_LEVELS
from obs.dashboards import promql as q
from obs.dashboards.common import (
    LOGS_UID,
    LOKI,
    LOKI_VAR,
    PROMETHEUS,
    SERVICE_VAR,
    VariableBuilder,
    base_dashboard,
    datasource_variable,
    target,
    target_variables,
)
from obs.dashboards.http_overview import PROFILES_PANEL_URL
from obs.dashboards.options import REQUEST_ID, DashboardOptions
from obs.metrics import LEVEL, LOG_EVENTS, ROUTE, SERVICE

LEVEL_VAR = "level"
REQUEST_ID_VAR = REQUEST_ID


def request_id_filter() -> str:
    """A line filter matching one request's lines exactly, or every line while the box is empty.

    obs writes compact JSON (``"request_id":"<id>"``), so the first alternative, with the id
    escaped as a regular expression by Grafana and closed by its quote, matches that id and not
    a longer one (``...-100`` never matches ``...-1000``). The second, ``^<id>``, can only match
    when the id is empty: a JSON line starts with ``{``, which no request id contains.
    """
    escaped = f"${{{REQUEST_ID_VAR}:regex}}"
    return f'|~ `"{REQUEST_ID}":"{escaped}"|^{escaped}`'


def logql() -> str:
    """The Loki query of the logs panel, filtered by every variable of the dashboard."""
    stream = f'{{{SERVICE}="${SERVICE_VAR}", {LEVEL}=~"${LEVEL_VAR}"}}'
    return f'{stream} {request_id_filter()} | json | {ROUTE}=~"${q.ROUTE_VAR}"'


def _variables(options: DashboardOptions) -> list[VariableBuilder]:
    return [
        *target_variables(options),
        datasource_variable(LOKI_VAR, "loki", "Loki", options.loki_uid),
    ]


def _filter_variables(
    options: DashboardOptions,
) -> list[VariableBuilder]:
    service = (
        db.QueryVariable(SERVICE_VAR)
        .label("Service")
        .description("Value of the Loki `service` label (the `service` field of the logs).")
        .datasource(LOKI)
        .query(f"label_values({SERVICE})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .current(
            dm.VariableOption(selected=True, text=options.service_name, value=options.service_name)
        )
    )
    level = (
        db.CustomVariable(LEVEL_VAR)
        .label("Level")
        .values(",".join(LOG_LEVELS))
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )
    request_id = (
        db.TextBoxVariable(REQUEST_ID_VAR)
        .label("Request id")
        .description("Show only the lines of one request (exemplar links fill this in).")
        .default_value("")
        .current(dm.VariableOption(selected=True, text="", value=""))
    )
    return [service, level, request_id]


def build(options: DashboardOptions) -> db.Dashboard:
    """The logs dashboard."""
    events = q.sum_rate(
        options.metric(LOG_EVENTS), (*q.TARGET_MATCHERS, f'{LEVEL}=~"${LEVEL_VAR}"'), by=(LEVEL,)
    )
    server_errors = q.request_rate(options, (*q.ROUTE_MATCHERS, q.SERVER_ERROR))
    volume = (
        timeseries.Panel()
        .title("Log events by level")
        .description("Is the service logging more errors or warnings than usual?")
        .datasource(PROMETHEUS)
        .with_target(target(events, f"{{{{{LEVEL}}}}}"))
        .unit("ops")
        .fill_opacity(30)
        .stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
        .span(12)
        .height(8)
    )
    errors = (
        timeseries.Panel()
        .title("5xx responses")
        .description("Do error logs line up with failed requests?")
        .datasource(PROMETHEUS)
        .with_target(target(server_errors, "5xx"))
        .unit("reqps")
        .span(12)
        .height(8)
    )
    lines = (
        logs.Panel()
        .title("Log lines")
        .description("What did the service say? Filtered by service, level, route and request id.")
        .datasource(LOKI)
        .with_target(loki.Dataquery().expr(logql()).ref_id("A").datasource(LOKI).max_lines(1000))
        .show_time(True)
        .wrap_log_message(True)
        .prettify_log_message(False)
        .enable_log_details(True)
        .sort_order(cm.LogsSortOrder.DESCENDING)
        .dedup_strategy(cm.LogsDedupStrategy.NONE)
        .span(24)
        .height(16)
    )
    dashboard = base_dashboard(
        options,
        uid=LOGS_UID,
        title="obs / Logs",
        description="Log volume by level next to failures, and the JSON log lines in Loki.",
        profile_panel_url=PROFILES_PANEL_URL,
    )
    variables: list[VariableBuilder] = [*_variables(options), *_filter_variables(options)]
    return dashboard.variables(variables).with_panel(volume).with_panel(errors).with_panel(lines)
