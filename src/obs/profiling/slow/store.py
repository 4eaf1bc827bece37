"""The files of slow-request profiles: a private directory, exclusive owner-only files, retention.

One profile is five files sharing a stem named after the request id: ``<stem>.json`` (the
:class:`~obs.profiling.result.ProfileResult` plus a ``request`` block: id, route, duration, time,
pid), ``.svg``, ``.speedscope.json``, ``.collapsed.txt`` and ``.summary.txt``.

Security, as for one-request profiles: the directory is ``0700`` and must be a real directory
owned by this user, not writable by others; every file is created ``0600`` with
``O_CREAT | O_EXCL | O_NOFOLLOW`` through a descriptor of that directory, so a planted symlink or a
file made in advance is refused, never followed or overwritten. Nothing here is served over HTTP.

Names never collide: the stem is the request id made file-safe, *without a dot* (letters, digits,
``_`` and ``-``), so that no stem can look like another's plus a suffix (an id ``x.speedscope``
would otherwise make ``x.speedscope.json``, taken for the rendered file of ``x``, and escape
retention and listing); when that stem is taken (by another worker or a repeated client id),
``-<pid>-<n>`` is appended; the ``.json`` file is the reservation, created exclusively before
the request's access line names the profile. A file's stem is therefore the part of its name
before the first dot, and retention counts every file by that stem.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs import private_files
from obs.exceptions import ProfilingError
from obs.private_files import UnsafePathError, create_exclusive
from obs.profiling.renderers import render, render_summary
from obs.profiling.result import ProfileResult

INDEX_SUFFIX = ".json"
#: The rendered files beside the index, by renderer format (``summary`` is the text summary).
RENDERED: dict[str, str] = {
    "svg": ".svg",
    "speedscope": ".speedscope.json",
    "collapsed": ".collapsed.txt",
    "summary": ".summary.txt",
}
ALL_SUFFIXES: tuple[str, ...] = (INDEX_SUFFIX, *RENDERED.values())
SUBDIRECTORY = "slow"

_NOT_IN_STEM = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_STEM = 100


def stem_for(request_id: str) -> str:
    """*request_id* as a stem: runs of anything but letters, digits, ``_`` and ``-`` (the dot
    included) become ``_``; never empty, never starting with ``-`` (an option to a shell
    command)."""
    return _NOT_IN_STEM.sub("_", request_id).strip("_-")[:_MAX_STEM] or "request"


def _stem_of(name: str) -> str:
    return name.split(".", 1)[0]


def directory_for(profile_dir: str | os.PathLike[str]) -> Path:
    """Where slow-request profiles go: ``<OBS_PROFILE_DIR>/slow``."""
    return Path(profile_dir) / SUBDIRECTORY


def open_private_directory(directory: Path) -> int:
    """Create *directory* (``0700``) if missing and return a descriptor of it, checked safe.

    Refused with a :class:`ProfilingError`: a symlink, a non-directory, a directory owned by
    another user, one that others can write to (:func:`obs.private_files.open_private_directory`,
    the rule of every private directory).
    """
    try:
        fd = private_files.open_private_directory(directory)
    except UnsafePathError as exc:
        raise ProfilingError(
            f"refusing the profile directory: {exc} Or point OBS_PROFILE_DIR elsewhere."
        ) from None
    except OSError as exc:
        raise ProfilingError(
            f"cannot use the profile directory {directory}: {exc.strerror or exc}; point "
            "OBS_PROFILE_DIR at a directory of your own (not a symlink)."
        ) from exc
    if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
        os.fchmod(fd, 0o700)  # ours: profiles name source files, so others may not read them
    return fd


def reserve(dir_fd: int, request_id: str) -> tuple[str, int]:
    """Create the profile's ``.json`` exclusively; return its stem and an open descriptor."""
    base = stem_for(request_id)
    candidates = [base] + [f"{base}-{os.getpid()}-{n}" for n in range(1, 100)]
    for stem in candidates:
        try:
            return stem, create_exclusive(stem + INDEX_SUFFIX, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise ProfilingError(f"no free profile name for request id {request_id!r}")


def _write_new(dir_fd: int, name: str, text: str) -> None:
    fd = create_exclusive(name, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_profile(
    dir_fd: int, stem: str, index_fd: int, result: ProfileResult, request: dict[str, Any]
) -> None:
    """Write the rendered files, then the index (into its reserved descriptor) last."""
    try:
        for fmt, suffix in RENDERED.items():
            text = render_summary(result) if fmt == "summary" else render(result, fmt)
            _write_new(dir_fd, stem + suffix, text)
        document = {**result.to_json(), "request": request}
        with os.fdopen(index_fd, "w", encoding="utf-8") as fh:
            index_fd = -1
            fh.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    finally:
        if index_fd >= 0:
            os.close(index_fd)


@dataclass(frozen=True)
class StoredProfile:
    """One kept profile, as listed from its ``.json`` file."""

    stem: str
    directory: Path
    request_id: str
    route: str
    duration: float
    time: float
    pid: int | None

    def path(self, fmt: str = "svg") -> Path:
        """The file of *fmt* (``svg``, ``speedscope``, ``collapsed``, ``summary``, ``json``)."""
        return self.directory / (self.stem + (INDEX_SUFFIX if fmt == "json" else RENDERED[fmt]))

    def load(self) -> ProfileResult:
        """The profile's samples."""
        return ProfileResult.load(self.path("json"))


def _index_stems(names: set[str]) -> Iterator[str]:
    for name in names:
        stem, dot, suffix = name.partition(".")
        if dot and "." + suffix == INDEX_SUFFIX:
            yield stem


def list_profiles(directory: Path) -> list[StoredProfile]:
    """The complete profiles in *directory*, newest first; unreadable ones are left out."""
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ProfilingError(f"cannot read {directory}: {exc.strerror or exc}.") from exc
    profiles = []
    for stem in _index_stems(names):
        try:
            with open(directory / (stem + INDEX_SUFFIX), encoding="utf-8") as fh:
                request = json.load(fh)["request"]
            profiles.append(
                StoredProfile(
                    stem,
                    directory,
                    str(request["id"]),
                    str(request.get("route", "")),
                    float(request["duration"]),
                    float(request["time"]),
                    request.get("pid"),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # reserved but not yet written, or not ours
    profiles.sort(key=lambda p: (-p.time, p.stem))
    return profiles


def prune(directory: Path, max_files: int, max_bytes: int) -> int:
    """Remove the oldest profiles beyond *max_files* or *max_bytes* (the newest always stays).

    Every file with one of obs's suffixes counts, grouped by its stem (the name up to the first
    dot), whatever the request id was: also what an earlier obs wrote for an id with a dot.
    """
    try:
        entries = [entry for entry in os.scandir(directory) if entry.name.endswith(ALL_SUFFIXES)]
    except OSError:
        return 0
    groups: dict[str, list[os.DirEntry[str]]] = {}
    for entry in entries:
        stem = _stem_of(entry.name)
        if stem:
            groups.setdefault(stem, []).append(entry)
    kept: list[tuple[float, str, int]] = []
    for stem, files in groups.items():
        try:
            stats = [entry.stat(follow_symlinks=False) for entry in files]
        except OSError:
            continue
        kept.append((max(s.st_mtime for s in stats), stem, sum(s.st_size for s in stats)))
    kept.sort(reverse=True)
    total = sum(size for _, _, size in kept)
    removed = 0
    while len(kept) > 1 and (len(kept) > max_files or total > max_bytes):
        _, stem, size = kept.pop()
        total -= size
        for entry in groups[stem]:
            try:
                os.unlink(directory / entry.name)
            except FileNotFoundError:
                pass
        removed += 1
    return removed
