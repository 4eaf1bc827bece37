"""``obs doctor``: the checks as one line each, and a non-zero exit status on a failure."""

from __future__ import annotations

import sys

import click


@click.command("doctor")
@click.option("--url", help="The service's base URL, e.g. http://127.0.0.1:8000.")
@click.option("--prometheus", "prometheus_url", help="A Prometheus, e.g. http://127.0.0.1:9090.")
@click.option("--pid", type=click.IntRange(min=1), help="The service's process (the master).")
@click.option("--metrics-path", default="/metrics", show_default=True)
@click.option("--request-id-header", default="X-Request-ID", show_default=True)
def doctor_command(
    url: str | None,
    prometheus_url: str | None,
    pid: int | None,
    metrics_path: str,
    request_id_header: str,
) -> None:
    """Diagnose a service's logs, metrics, exemplars and profiling set-up, one line per check.

    Each line is ok, warn or fail, and says what to do; the exit status is 1 if any failed.
    """
    from obs.doctor import run_checks

    if url is None and prometheus_url is None and pid is None:
        raise click.UsageError("give at least one of --url, --prometheus, --pid")
    findings = run_checks(
        url,
        prometheus_url,
        pid,
        metrics_path=metrics_path,
        request_id_header=request_id_header,
    )
    for finding in findings:
        click.echo(finding.line())
    if any(f.status == "fail" for f in findings):
        sys.exit(1)
