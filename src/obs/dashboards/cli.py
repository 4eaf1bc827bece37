"""``obs dashboards``: generate obs's dashboards and alerts, or build a team's own dashboards."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from obs.dashboards.options import (
    DashboardOptions,
    parse_availability_slo,
    parse_latency_slo,
    parse_min_requests,
)
from obs.dashboards.v2 import CLASSIC, FORMATS
from obs.exceptions import ObsError

_DEFAULTS = DashboardOptions()
_FORMAT_HELP = (
    "Dashboard schema: classic JSON (Grafana 11/12 provisioning), v2 (dashboard.grafana.app/v2, "
    "Grafana 13) or v2beta1 (Grafana 12.4)."
)


class StaleFilesError(ObsError):
    """``--check`` found generated files that differ from a fresh generation."""


def _regenerate_command() -> str:
    """The ``generate`` command line that rewrites the files: every option given (on the
    command line or from the environment), without ``--check``."""
    ctx = click.get_current_context()
    words = ["obs", "dashboards", "generate"]
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name == "check":
            continue
        source = ctx.get_parameter_source(name)
        if name != "out" and source in (None, click.core.ParameterSource.DEFAULT):
            continue
        value = ctx.params[name]
        if value is not None:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


@click.group("dashboards")
def dashboards() -> None:
    """Grafana dashboards and Prometheus alerts built from the obs metric catalogue."""


@dashboards.command("generate")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dashboards"),
    show_default=True,
    help="Folder to write the JSON dashboards, alerts and provisioning files to.",
)
@click.option(
    "--service-name",
    envvar="OBS_SERVICE_NAME",
    default=_DEFAULTS.service_name,
    show_default=True,
    help="The service the logs dashboard and every link into it open (the Loki `service` label).",
)
@click.option("--prometheus-uid", default=_DEFAULTS.prometheus_uid, show_default=True)
@click.option("--loki-uid", default=_DEFAULTS.loki_uid, show_default=True)
@click.option(
    "--pyroscope-uid", default=None, help="Link flame graphs in this Pyroscope data source."
)
@click.option("--metric-prefix", default="", help="Prefix your scrape config adds to metric names.")
@click.option(
    "--slo-availability",
    default=f"{_DEFAULTS.availability_slo * 100:g}",
    show_default=True,
    help="Availability objective in percent: requests not failing with a 5xx.",
)
@click.option(
    "--slo-latency",
    default=f"{_DEFAULTS.latency_slo_seconds:g}s@{_DEFAULTS.latency_slo_ratio * 100:g}",
    show_default=True,
    help="Latency objective THRESHOLD@PERCENT; the threshold must be a duration bucket bound.",
)
@click.option(
    "--min-requests",
    type=int,
    default=_DEFAULTS.min_requests,
    show_default=True,
    help="Low-traffic guard: alerts stay quiet below this many requests in their long window.",
)
@click.option(
    "--grafana-url",
    default=_DEFAULTS.grafana_url,
    show_default=True,
    help="Grafana's address as alert receivers reach it; alert links are absolute.",
)
@click.option(
    "--runbook-url", default="", help="Runbook page; default: the overview's runbook panel."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=CLASSIC,
    show_default=True,
    help=_FORMAT_HELP,
)
@click.option(
    "--check", is_flag=True, help="Write nothing; fail if a file differs from a fresh generation."
)
def generate_command(
    out: Path,
    service_name: str,
    prometheus_uid: str,
    loki_uid: str,
    pyroscope_uid: str | None,
    metric_prefix: str,
    slo_availability: str,
    slo_latency: str,
    min_requests: int,
    grafana_url: str,
    runbook_url: str,
    fmt: str,
    check: bool,
) -> None:
    """Write deterministic dashboards, alert rules and provisioning files to OUT."""
    from obs.dashboards.files import stale_files, write_files

    latency_seconds, latency_ratio = parse_latency_slo(slo_latency)
    options = DashboardOptions(
        service_name=service_name,
        prometheus_uid=prometheus_uid,
        loki_uid=loki_uid,
        pyroscope_uid=pyroscope_uid,
        metric_prefix=metric_prefix,
        availability_slo=parse_availability_slo(slo_availability),
        latency_slo_seconds=latency_seconds,
        latency_slo_ratio=latency_ratio,
        min_requests=parse_min_requests(min_requests),
        grafana_url=grafana_url,
        runbook_url=runbook_url,
    )
    if check:
        stale = stale_files(out, options, fmt=fmt)
        if stale:
            names = ", ".join(str(path) for path in stale)
            raise StaleFilesError(
                f"generated files are out of date: {names}; run: {_regenerate_command()}"
            )
        click.echo(f"{out}: up to date")
        return
    changed = write_files(out, options, fmt=fmt)
    for path in changed:
        click.echo(f"wrote {path}")
    if not changed:
        click.echo(f"{out}: up to date")


@dashboards.command("build")
@click.argument("src_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder, emptied first: one sub-folder per Grafana folder.",
)
@click.option(
    "--from-configmap",
    is_flag=True,
    help="Take the folder of a root file from its name: folder--name.dashboard.py.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=CLASSIC,
    show_default=True,
    help=_FORMAT_HELP,
)
@click.option(
    "--grafana-path",
    default="/var/lib/grafana/dashboards",
    show_default=True,
    help="Where OUT is mounted in Grafana, for the provisioning file.",
)
def build_command(
    src_dir: Path, out: Path, from_configmap: bool, fmt: str, grafana_path: str
) -> None:
    """Run every *.dashboard.py under SRC_DIR and write one JSON file per dashboard to OUT.

    A file defines `dashboard`: a grafana-foundation-sdk Dashboard builder (obs's panels are in
    obs.dashboards.panels) or a dict. The first file that fails stops the build.
    """
    from obs.dashboards.build import build

    written = build(src_dir, out, from_configmap=from_configmap, fmt=fmt, grafana_path=grafana_path)
    if not written:
        click.echo(f"There are no dashboards to build under {src_dir}")
        return
    for path in written:
        click.echo(f"wrote {path}")
