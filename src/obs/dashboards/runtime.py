"""Runtime: what the Python process costs, from prometheus_client's default collectors."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries

from obs.dashboards import promql as q
from obs.dashboards.common import PROMETHEUS, RUNTIME_UID, base_dashboard, target, target_variables
from obs.dashboards.http_overview import PROFILES_PANEL_URL
from obs.dashboards.options import DashboardOptions

# These come from prometheus_client's ProcessCollector and GCCollector, registered on its
# default registry, not from the obs catalogue; they are never prefixed.
PROCESS_CPU = "process_cpu_seconds_total"
PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes"
PROCESS_OPEN_FDS = "process_open_fds"
PROCESS_MAX_FDS = "process_max_fds"
GC_COLLECTIONS = "python_gc_collections_total"
RUNTIME_METRICS: tuple[str, ...] = (
    PROCESS_CPU,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    GC_COLLECTIONS,
)


def _panel(title: str, question: str, unit: str, *targets: tuple[str, str]) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(question)
        .datasource(PROMETHEUS)
        .targets([target(expr, legend) for expr, legend in targets])
        .unit(unit)
        .span(12)
        .height(8)
    )


def build(options: DashboardOptions) -> db.Dashboard:
    """The runtime dashboard: CPU, memory, file descriptors and garbage collection."""
    by_instance = ("instance",)
    cpu = q.sum_rate(PROCESS_CPU, q.TARGET_MATCHERS, by=by_instance)
    memory = f"sum by (instance) ({q.selector(PROCESS_RESIDENT_MEMORY, *q.TARGET_MATCHERS)})"
    fds = f"sum by (instance) ({q.selector(PROCESS_OPEN_FDS, *q.TARGET_MATCHERS)})"
    max_fds = f"min by (instance) ({q.selector(PROCESS_MAX_FDS, *q.TARGET_MATCHERS)})"
    gc = q.sum_rate(GC_COLLECTIONS, q.TARGET_MATCHERS, by=("instance", "generation"))
    dashboard = base_dashboard(
        options,
        uid=RUNTIME_UID,
        title="obs / Runtime",
        description="CPU, memory, file descriptors and garbage collection of the service.",
        profile_panel_url=PROFILES_PANEL_URL,
    ).variables(target_variables(options, route_multi=None))
    panels = [
        _panel("Process CPU", "Is the process CPU-bound? (1 = one core busy.)", "percentunit",
               (cpu, "{{instance}}")),
        _panel("Resident memory", "Is memory growing (a leak) or stable?", "bytes",
               (memory, "{{instance}}")),
        _panel("Open file descriptors", "Are sockets or files leaking towards the limit?",
               "short", (fds, "{{instance}} open"), (max_fds, "{{instance}} limit")),
        _panel("GC collections", "Is the garbage collector busy (gen 2 runs are the slow ones)?",
               "ops", (gc, "{{instance}} gen {{generation}}")),
    ]  # fmt: skip
    for panel in panels:
        dashboard = dashboard.with_panel(panel)
    return dashboard
