"""Pieces every obs dashboard shares: data source refs, variables, targets and links."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from obs.dashboards.options import DashboardOptions
from obs.dashboards.promql import INSTANCE_VAR, JOB_VAR, ROUTE_VAR
from obs.metrics import REQUEST_DURATION, ROUTE

PanelBuilder = cogbuilder.Builder[dm.Panel]
VariableBuilder = cogbuilder.Builder[dm.VariableModel]
LinkBuilder = cogbuilder.Builder[dm.DashboardLink]

#: Dashboard uids: stable, so links between the dashboards survive re-provisioning.
HTTP_UID = "obs-http"
ROUTE_UID = "obs-route"
LOGS_UID = "obs-logs"
RUNTIME_UID = "obs-runtime"
#: The tag every obs dashboard carries; the dashboard links list them by it.
TAG = "obs"

PROMETHEUS_VAR = "datasource"
LOKI_VAR = "loki"
#: The logs dashboard's variable holding the Loki ``service`` label.
SERVICE_VAR = "service"
PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid=f"${{{PROMETHEUS_VAR}}}")
LOKI = dm.DataSourceRef(type_val="loki", uid=f"${{{LOKI_VAR}}}")
PYROSCOPE_TYPE = "grafana-pyroscope-datasource"


def target(
    expr: str,
    legend: str = "__auto",
    *,
    exemplar: bool = False,
    instant: bool = False,
    fmt: PromQueryFormat | None = None,
) -> prometheus.Dataquery:
    """A Prometheus query of the dashboard's selected data source."""
    query = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(PROMETHEUS)
    query = query.exemplar(exemplar)
    query = query.instant() if instant else query.range()
    return query.format(fmt) if fmt is not None else query


def datasource_variable(name: str, plugin: str, label: str, uid: str) -> db.DatasourceVariable:
    """Pick a data source of type *plugin*, defaulting to the one with *uid*."""
    return (
        db.DatasourceVariable(name)
        .label(label)
        .type(plugin)
        .current(dm.VariableOption(selected=True, text=uid, value=uid))
    )


def label_variable(
    options: DashboardOptions,
    label: str,
    *,
    title: str,
    multi: bool,
    matchers: str = "",
    include_all: bool = True,
) -> db.QueryVariable:
    """Values of *label* on the request-duration series, optionally filtered by *matchers*.

    Without *include_all* there is no "All" option and no saved selection, so Grafana opens
    the dashboard on the first value (the drill-down shows one route, not all of them merged).
    """
    series = f"{options.metric(REQUEST_DURATION)}_count"
    series = f"{series}{{{matchers}}}" if matchers else series
    variable = (
        db.QueryVariable(label)
        .label(title)
        .datasource(PROMETHEUS)
        .query(f"label_values({series}, {label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if not include_all:
        return variable
    # ".*" instead of a list of every value: the query stays short with many routes.
    all_option = dm.VariableOption(selected=True, text="All", value="$__all")
    return variable.all_value(".*").current(all_option)


def target_variables(
    options: DashboardOptions, *, route_multi: bool | None = True
) -> list[VariableBuilder]:
    """Data source, ``job``, ``instance`` (multi) and, unless *route_multi* is None, the route.

    A single-valued route (``route_multi=False``, the drill-down) has no "All" option.
    """
    variables: list[VariableBuilder] = [
        datasource_variable(PROMETHEUS_VAR, "prometheus", "Prometheus", options.prometheus_uid),
        label_variable(options, JOB_VAR, title="Job", multi=False),
        label_variable(
            options, INSTANCE_VAR, title="Instance", multi=True, matchers=f'job=~"${JOB_VAR}"'
        ),
    ]
    if route_multi is not None:
        variables.append(
            label_variable(
                options,
                ROUTE_VAR,
                title="Route",
                multi=route_multi,
                matchers=f'job=~"${JOB_VAR}", instance=~"${INSTANCE_VAR}"',
                include_all=route_multi,
            )
        )
    return variables


def dashboard_url(uid: str, *params: str) -> str:
    """A link to another obs dashboard; ``/d/<uid>`` needs no slug."""
    query = "&".join(params)
    return f"/d/{uid}?{query}" if query else f"/d/{uid}"


#: Carried over by every cross-dashboard link: the time range and the selected targets.
CARRY = (
    "${__url_time_range}",
    f"${{{PROMETHEUS_VAR}:queryparam}}",
    f"${{{JOB_VAR}:queryparam}}",
    f"${{{INSTANCE_VAR}:queryparam}}",
)


def service_param(options: DashboardOptions) -> str:
    """``var-service=<name>``: every link into the logs opens the generated service's lines.

    The metrics dashboards have no ``service`` variable (Prometheus knows the job), so the link
    carries the service the dashboards were generated for; without it the logs dashboard would
    open on whatever service it shows by default.
    """
    return urlencode({f"var-{SERVICE_VAR}": options.service_name})


def logs_link(options: DashboardOptions, *, route_from_series: bool) -> db.DashboardLink:
    """A data link to the logs dashboard for the clicked point's time range, service and route.

    With *route_from_series* the route comes from the clicked series' ``http_route`` label;
    otherwise the dashboard's own route selection is passed on.
    """
    route = (
        f"var-{ROUTE_VAR}=${{__field.labels.{ROUTE}}}"
        if route_from_series
        else f"${{{ROUTE_VAR}:queryparam}}"
    )
    return (
        db.DashboardLink("Log lines of this route")
        .url(dashboard_url(LOGS_UID, *CARRY, service_param(options), route))
        .target_blank(False)
    )


def route_link(*, from_table: bool = False) -> db.DashboardLink:
    """A data link to the route drill-down for the clicked series' (or table row's) route.

    It keeps the time range, the data source, the job and the instances.
    """
    value = f"${{__data.fields.{ROUTE}}}" if from_table else f"${{__field.labels.{ROUTE}}}"
    return db.DashboardLink("Drill down into this route").url(
        dashboard_url(ROUTE_UID, *CARRY, f"var-{ROUTE_VAR}={value}")
    )


PROFILE_HINT = (
    "Capture a flame graph of the running service with `obs profile` (py-spy, from outside the "
    "process; in a container it needs the SYS_PTRACE capability). See the Profiles panel of the "
    "HTTP overview."
)


def dashboard_links(options: DashboardOptions, *, profile_panel_url: str) -> list[LinkBuilder]:
    """The links at the top of every obs dashboard: siblings, flame graphs, Pyroscope."""
    links: list[LinkBuilder] = [
        db.DashboardLink("obs dashboards")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True),
        db.DashboardLink("Flame graph: obs profile")
        .type(dm.DashboardLinkType.LINK)
        .icon("info")
        .tooltip(PROFILE_HINT)
        .url(profile_panel_url)
        .keep_time(True),
    ]
    if options.pyroscope_uid is not None:
        links.append(
            db.DashboardLink("Flame graphs in Pyroscope")
            .type(dm.DashboardLinkType.LINK)
            .icon("external link")
            .tooltip(f"Continuous profiles of {options.service_name} in Pyroscope (Explore).")
            .url(pyroscope_explore_url(options))
            .keep_time(False)
        )
    return links


def pyroscope_explore_url(options: DashboardOptions) -> str:
    """Grafana Explore opened on the service's CPU profile in the Pyroscope data source."""
    pane = {
        "datasource": options.pyroscope_uid,
        "queries": [
            {
                "datasource": {"type": PYROSCOPE_TYPE, "uid": options.pyroscope_uid},
                "labelSelector": f'{{service_name="{options.service_name}"}}',
                "profileTypeId": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                "queryType": "profile",
                "refId": "A",
            }
        ],
        "range": {"from": "now-1h", "to": "now"},
    }
    panes = json.dumps({"flame": pane}, sort_keys=True, separators=(",", ":"))
    return f"/explore?schemaVersion=1&panes={quote(panes, safe='')}"


def base_dashboard(
    options: DashboardOptions, *, uid: str, title: str, description: str, profile_panel_url: str
) -> db.Dashboard:
    """A dashboard with the obs defaults: tags, last hour, 30 s refresh, shared crosshair."""
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, options.service_name])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .editable()
    )
    return builder.links(dashboard_links(options, profile_panel_url=profile_panel_url))
