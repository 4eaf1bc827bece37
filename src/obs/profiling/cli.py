"""The ``obs profile`` and ``obs dump`` commands: a thin layer over :mod:`obs.profiling.pyspy`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from obs.escaping import escape_control
from obs.exceptions import ProfilingError
from obs.profiling.pyspy import RecordOptions, check_pid, dump, record
from obs.profiling.renderers import FORMATS, SUFFIXES, render, render_summary, renderer
from obs.profiling.result import ProfileResult
from obs.profiling.storage import ensure_private_directory, write_private

DEFAULT_DIRECTORY = "profiles"


def output_paths(pid: int, fmt: str | None, output: str | None) -> dict[str, Path]:
    """Where each format is written: ``--output`` or a timestamped file under ``./profiles/``.

    Without ``--format`` an SVG is written and a speedscope file beside it.
    """
    formats = [fmt] if fmt else ["svg", "speedscope"]
    if output is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(DEFAULT_DIRECTORY) / f"pid{pid}-{stamp}"
    else:
        base = Path(output)
        for suffix in sorted(SUFFIXES.values(), key=len, reverse=True):
            if base.name.endswith(suffix):
                base = base.with_name(base.name[: -len(suffix)])
                break
    paths = {f: base.with_name(base.name + SUFFIXES[f]) for f in formats}
    if output is not None and fmt is not None:
        paths[fmt] = Path(output)  # an explicit name is kept as given
    return paths


def write_outputs(result: ProfileResult, paths: dict[str, Path], *, private_parent: bool) -> None:
    """Render *result* once per format into *paths*, each file ``0600``.

    A profile shows the target's command line, source paths and function names: the files are
    owner-only, replaced atomically without following a link at their name, and the default
    directory (*private_parent*) is created ``0700`` or checked like every obs state directory.
    """
    for fmt, path in paths.items():
        try:
            if private_parent:
                ensure_private_directory(path.parent)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, render(result, fmt), replace=True)
        except OSError as exc:
            raise ProfilingError(
                f"cannot write {path}: {exc.strerror or exc}; pass --output with a writable path."
            ) from exc


@click.command("profile")
@click.argument("pid", type=int)
@click.option(
    "--duration",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to sample; Ctrl-C (or SIGTERM) stops early and still writes the result.",
)
@click.option(
    "--rate", default=100, show_default=True, type=click.IntRange(min=1), help="Samples per second."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format [default: svg plus a speedscope file beside it].",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="With --format, the output file, kept as given. Without it, the name of the SVG, and "
    "of the speedscope file beside it: profile.svg gives profile.svg and "
    "profile.speedscope.json, profile gives the same, x.txt gives x.txt.svg and "
    "x.txt.speedscope.json [default: ./profiles/pid<PID>-<timestamp>.<suffix>].",
)
@click.option(
    "--subprocesses/--no-subprocesses",
    default=True,
    show_default=True,
    help="Also sample child processes (gunicorn and uvicorn workers).",
)
@click.option("--idle", is_flag=True, help="Include threads that are waiting, not running.")
@click.option("--gil", is_flag=True, help="Only include samples of threads holding the GIL.")
@click.option("--native", is_flag=True, help="Include native (C, C++, Cython) frames.")
@click.option(
    "--nonblocking/--blocking",
    default=True,
    show_default=True,
    help="Read stacks without pausing the process (low overhead, for production), or pause "
    "it for every sample (exact stacks, costs the process about a tenth of its throughput).",
)
def profile_command(
    pid: int,
    duration: float,
    rate: int,
    fmt: str | None,
    output: str | None,
    subprocesses: bool,
    idle: bool,
    gil: bool,
    native: bool,
    nonblocking: bool,
) -> None:
    """Record a flame graph of the running Python process PID with py-spy."""
    options = RecordOptions(duration, rate, subprocesses, idle, gil, native, nonblocking)
    paths = output_paths(pid, fmt, output)
    check_pid(pid)
    click.echo(
        f"Sampling pid {pid} at {rate} Hz for up to {duration:g}s"
        f"{' with its subprocesses' if subprocesses else ''}"
        f"{'' if nonblocking else ', pausing it for each sample'}; Ctrl-C stops early.",
        err=True,
    )
    # SIGTERM (kill, a container stopping) ends the run as Ctrl-C does: py-spy stops, the
    # files are written, and no py-spy is left behind sampling for the rest of the duration.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = record(pid, options)
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_outputs(result, paths, private_parent=output is None)
    for path in paths.values():
        click.echo(f"Wrote {path}")
    click.echo(renderer(fmt or "svg").view_hint)
    click.echo(render_summary(result), nl=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("dump")
@click.argument("pid", type=int)
@click.option("--native", is_flag=True, help="Include native (C, C++, Cython) frames.")
@click.option("--subprocesses", is_flag=True, help="Also dump child processes.")
@click.option("--locals", "show_locals", is_flag=True, help="Show each frame's local variables.")
@click.option("--nonblocking", is_flag=True, help="Do not pause the process while reading.")
def dump_command(
    pid: int, native: bool, subprocesses: bool, show_locals: bool, nonblocking: bool
) -> None:
    """Print the current stack of every thread of PID (for a hung process)."""
    text = dump(
        pid,
        native=native,
        subprocesses=subprocesses,
        show_locals=show_locals,
        nonblocking=nonblocking,
    )
    click.echo(escape_control(text, keep_newlines=True), nl=False)  # the target's names and values
