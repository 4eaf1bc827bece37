"""``obs dashboards``: generate the dashboards, alert rules and provisioning files."""

from __future__ import annotations

from pathlib import Path

import click

from obs.dashboards.files import stale_files, write_files
from obs.dashboards.options import DashboardOptions
from obs.exceptions import ObsError

_DEFAULTS = DashboardOptions()


class StaleFilesError(ObsError):
    """``--check`` found generated files that differ from a fresh generation."""


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
    help="Default service of the logs dashboard (the Loki `service` label).",
)
@click.option("--prometheus-uid", default=_DEFAULTS.prometheus_uid, show_default=True)
@click.option("--loki-uid", default=_DEFAULTS.loki_uid, show_default=True)
@click.option(
    "--pyroscope-uid", default=None, help="Link flame graphs in this Pyroscope data source."
)
@click.option("--metric-prefix", default="", help="Prefix your scrape config adds to metric names.")
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
    check: bool,
) -> None:
    """Write deterministic dashboards, alert rules and provisioning files to OUT."""
    options = DashboardOptions(
        service_name=service_name,
        prometheus_uid=prometheus_uid,
        loki_uid=loki_uid,
        pyroscope_uid=pyroscope_uid,
        metric_prefix=metric_prefix,
    )
    if check:
        stale = stale_files(out, options)
        if stale:
            names = ", ".join(str(path) for path in stale)
            raise StaleFilesError(
                f"generated files are out of date: {names}; run: obs dashboards generate --out {out}"
            )
        click.echo(f"{out}: up to date")
        return
    changed = write_files(out, options)
    for path in changed:
        click.echo(f"wrote {path}")
    if not changed:
        click.echo(f"{out}: up to date")
