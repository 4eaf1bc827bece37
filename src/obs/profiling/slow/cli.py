"""``obs profiles list|show|open``: the slow-request profiles a service kept, by request id.

What these commands print from a profile (request id, route, pid, function names) passes
:func:`~obs.escaping.escape_control`: the files may hold what a client or the profiled code chose,
and a terminal obeys escape sequences. The directory read must pass the private-directory rule
(:func:`obs.private_files.check_private_directory`): one another user controls could hold
profiles of its own making.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from obs.escaping import escape_control
from obs.exceptions import ProfilingError
from obs.private_files import UnsafePathError, check_private_directory
from obs.profiling.slow.store import SUBDIRECTORY, StoredProfile, directory_for, list_profiles

_DIR_HELP = "Directory of the profiles [default: $OBS_PROFILE_DIR/slow, else ./profiles/slow]."


def _directory(given: str | None) -> Path:
    if given is not None:
        return Path(given)
    from obs.config import Settings

    return directory_for(Settings.from_env().profile_dir)


def _check_directory(directory: Path) -> None:
    try:
        check_private_directory(directory)
    except FileNotFoundError:
        return  # nothing to read: list_profiles() says so
    except UnsafePathError as exc:
        raise ProfilingError(
            f"not reading profiles from a directory another user could have written: {exc}"
        ) from None


def _profiles(directory: Path) -> list[StoredProfile]:
    _check_directory(directory)
    profiles = list_profiles(directory)
    if not profiles:
        below = directory / SUBDIRECTORY
        if below.is_dir() and list_profiles(below):  # --dir given $OBS_PROFILE_DIR itself
            raise ProfilingError(
                f"no slow-request profiles in {directory}, but {below} has some: pass --dir {below}"
            )
        raise ProfilingError(
            f"no slow-request profiles in {directory}; a service keeps one per request slower "
            "than OBS_SLOW_PROFILE_THRESHOLD when OBS_SLOW_PROFILES=1 (pass --dir if it "
            "writes elsewhere)."
        )
    return profiles


def find(directory: Path, request_id: str) -> StoredProfile:
    """The newest profile of *request_id* (its stem is accepted too), or of the one request id
    that starts with it (``obs profiles show 5b2e``)."""
    profiles = _profiles(directory)
    for profile in profiles:
        if request_id in (profile.request_id, profile.stem):
            return profile
    started = {p.request_id: p for p in reversed(profiles) if p.request_id.startswith(request_id)}
    if request_id and len(started) == 1:
        return next(iter(started.values()))
    if len(started) > 1:
        raise ProfilingError(
            f"{len(started)} request ids start with {escape_control(request_id)!r}; give more "
            "of the id (`obs profiles list` shows them)."
        )
    raise ProfilingError(
        f"no profile of request id {request_id!r} in {directory} (it may have been faster than "
        "the threshold, or removed by retention); `obs profiles list` shows the ids kept."
    )


@click.group("profiles")
def profiles() -> None:
    """The flame graphs kept for slow requests, by request id."""


@profiles.command("list")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help=_DIR_HELP)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
def list_command(directory: str | None, limit: int) -> None:
    """Recent profiles, newest first: time, duration, route, request id."""
    shown = _profiles(_directory(directory))[:limit]
    click.echo(f"{'time':19}  {'duration':>9}  {'route':30}  request id")
    for p in shown:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.time))
        route, request_id = escape_control(p.route or "-"), escape_control(p.request_id)
        click.echo(f"{stamp}  {p.duration * 1000:7.0f}ms  {route:30}  {request_id}")


@profiles.command("show")
@click.argument("request_id")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help=_DIR_HELP)
def show_command(request_id: str, directory: str | None) -> None:
    """The summary of REQUEST_ID's profile: top functions by own and by total time."""
    from obs.profiling.renderers import render_summary

    profile = find(_directory(directory), request_id)
    click.echo(
        escape_control(
            f"request {profile.request_id}  {profile.route or '-'}  "
            f"{profile.duration * 1000:.0f}ms  pid {profile.pid}"
        )
    )
    click.echo(render_summary(profile.load()), nl=False)
    click.echo(f"Flame graph: {profile.path('svg')}")


@profiles.command("open")
@click.argument("request_id")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help=_DIR_HELP)
@click.option("--browser", is_flag=True, help="Open the SVG with the default application.")
def open_command(request_id: str, directory: str | None, browser: bool) -> None:
    """Print the path of REQUEST_ID's flame graph (the SVG), or open it with --browser."""
    path = find(_directory(directory), request_id).path("svg")
    if not path.is_file():
        raise ProfilingError(f"{path} is missing; the profile's other files are beside it.")
    click.echo(str(path))
    if browser:
        click.launch(str(path))
