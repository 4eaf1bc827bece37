"""The ``obs`` command: a thin layer over the programmatic API.

Errors raised on purpose (:class:`~obs.exceptions.ObsError`) are printed as ``Error: <message>``
on stderr with the error's exit code; nothing here is imported by the library itself.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from obs import __version__
from obs.config import ENVIRONMENT_VARIABLES, Settings, environment_value
from obs.dashboards.cli import dashboards
from obs.doctor.cli import doctor_command
from obs.exceptions import ObsError
from obs.profiling.cli import dump_command, profile_command
from obs.profiling.slow.cli import profiles as slow_profiles


class ObsGroup(click.Group):
    """Turns :class:`ObsError` (and a filesystem :class:`OSError`) into a one-line ``Error:``
    message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ObsError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            raise  # click's own handling: a closed pipe is not an error to report
        except OSError as exc:
            # A path the user gave (--out /proc/x, a read-only folder, a too-long name): one
            # line naming it, not a traceback.
            where = f"{exc.filename}: " if exc.filename is not None else ""
            click.echo(
                f"Error: {where}{exc.strerror or exc}; check the path exists and is writable, "
                "or choose another.",
                err=True,
            )
            ctx.exit(1)


@click.group(cls=ObsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="obs")
def cli() -> None:
    """Observability for Python web services: logs, metrics, profiles, dashboards."""


@cli.command("config")
def config_command() -> None:
    """Show the settings obs reads from OBS_* environment variables.

    Each line is written the way the variable is (``true``, ``a,b``), so it can be pasted into
    an environment file; a setting left unset is a comment saying what it means.
    """
    from obs.metrics import DURATION_BUCKETS

    settings = Settings.from_env()
    for var in ENVIRONMENT_VARIABLES:
        field = var.removeprefix("OBS_").lower()
        value = getattr(settings, field)
        if field == "profile_token":
            click.echo(f"{var}=(set)" if value else f"# {var} unset: one-request profiles off")
        elif field == "duration_buckets" and value is None:
            click.echo(f"{var}={environment_value(DURATION_BUCKETS)}")
        else:
            click.echo(f"{var}={environment_value(value)}")


@cli.command("demo")
@click.option(
    "--duration",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=2),
    help="Seconds of generated traffic.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port of the demo service [default: a free one]."
)
@click.option(
    "--out",
    default="obs-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the flame graph, logs, metrics and dashboards are written.",
)
def demo_command(duration: float, port: int | None, out: str) -> None:
    """Run an instrumented FastAPI service under load and show its metrics, logs and profile."""
    from pathlib import Path

    from obs.demo import run_demo

    # SIGTERM (kill, a container or CI job stopping) stops the demo as Ctrl-C does: every
    # process it started is stopped too, none left serving or sampling; exit 128 + signal.
    received = [signal.SIGINT]

    def terminate(signum: int, frame: object) -> None:
        received[0] = signal.Signals(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        run_demo(duration, port, Path(out))
    except KeyboardInterrupt:
        click.echo("Interrupted: every process the demo started has been stopped.", err=True)
        sys.exit(128 + received[0])
    finally:
        signal.signal(signal.SIGTERM, previous)


cli.add_command(dashboards)


cli.add_command(profile_command)
cli.add_command(dump_command)
cli.add_command(slow_profiles)
cli.add_command(doctor_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    # A command started from a non-interactive shell's background job inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: `kill -INT` would never stop
    # `obs profile` or `obs demo`, which stop (and write their files) on it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    cli.main(args=list(argv) if argv is not None else None, prog_name="obs")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
