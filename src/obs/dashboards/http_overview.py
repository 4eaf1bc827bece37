"""HTTP overview: the RED view of a service (rate, errors, duration) plus in-flight and sizes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import text
from grafana_foundation_sdk.models.text import TextMode

from obs.dashboards import panels
from obs.dashboards.alerts import RUNBOOK_PANEL_ID
from obs.dashboards.common import HTTP_UID, base_dashboard, dashboard_url, target_variables
from obs.dashboards.options import DashboardOptions
from obs.metrics import REQUEST_BODY_SIZE, RESPONSE_BODY_SIZE

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


RUNBOOK_TEXT = """\
**An SLO alert fired: what now?**

1. *Which objective?* The `slo` label says `errors` (5xx) or `slow` (latency); the *SLO burn
   rate* panel shows how fast each budget burns and whether it is still going on (1 h line).
2. *Which routes?* *Error ratio* and *p99 latency by route* above; click a series for its logs
   or its drill-down.
3. *Which requests?* Click an exemplar dot: the logs dashboard opens on that request's lines.
4. *Which code?* Capture a flame graph with `obs profile` (Profiles row).
5. A page (14.4x over 1 h or 6x over 6 h) means the monthly budget is gone within days:
   roll back or mitigate first. A ticket (1x over 3 days) can wait for working hours.
"""


def build(options: DashboardOptions) -> db.Dashboard:
    """The HTTP overview dashboard."""
    dashboard = base_dashboard(
        options,
        uid=HTTP_UID,
        title="obs / HTTP overview",
        description="Rate, errors and duration of every route, with links to logs and profiles.",
        profile_panel_url=PROFILES_PANEL_URL,
    ).variables(target_variables(options))
    dashboard = (
        dashboard.with_row(db.Row("Traffic and errors"))
        .with_panel(panels.request_rate(options))
        .with_panel(panels.error_ratio(options))
        .with_panel(panels.active_requests(options))
        .with_row(db.Row("Service level objectives"))
        .with_panel(panels.error_budget_remaining(options))
        .with_panel(panels.slo_burn_rates(options))
        .with_panel(
            text.Panel()
            .id(RUNBOOK_PANEL_ID)
            .title("Runbook: SLO alerts")
            .mode(TextMode.MARKDOWN)
            .content(RUNBOOK_TEXT)
            .span(24)
            .height(8)
        )
        .with_row(db.Row("Latency"))
        .with_panel(panels.latency_percentiles(options))
        .with_panel(panels.latency_by_route(options))
        .with_panel(panels.slowest_routes(options))
        .with_row(db.Row("Request and response sizes"))
        .with_panel(
            panels.body_size(
                options, REQUEST_BODY_SIZE, "Request body size", "How big are uploads?"
            )
        )
        .with_panel(
            panels.body_size(
                options, RESPONSE_BODY_SIZE, "Response body size", "How big are responses?"
            )
        )
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
