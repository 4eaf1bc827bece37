"""Where in-process profiles go: a private directory, owner-only files, a cap on how many.

Profiles show source paths and function names, so the directory is created ``0700`` (an existing
one must be this user's, not a link and not writable by others: :func:`ensure_private_directory`)
and every file is created ``0600`` without following links, exclusively, under a name with a
random part (:func:`write_private`, :func:`unique_stem`): a link another user plants in the
directory makes the write fail instead of redirecting it. Each profile is a pair
``<id>.speedscope.json`` + ``<id>.html``; beyond ``max_files`` pairs the oldest are removed.
Files that are not such a pair are never touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from obs.private_files import (
    UnsafePathError,
    check_private_directory,
    ensure_private_directory,
    random_suffix,
)
from obs.private_files import write_private as _write_private

__all__ = [
    "HTML_SUFFIX",
    "SPEEDSCOPE_SUFFIX",
    "UnsafePathError",
    "check_private_directory",
    "ensure_directory",
    "ensure_private_directory",
    "prune",
    "safe_stem",
    "unique_stem",
    "write_private",
]

SPEEDSCOPE_SUFFIX = ".speedscope.json"
HTML_SUFFIX = ".html"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


def safe_stem(text: str, fallback: str = "profile") -> str:
    """*text* reduced to a file-name stem: letters, digits, ``._-``; never hidden or empty."""
    stem = _UNSAFE.sub("_", text).strip("._")[:_MAX_STEM]
    return stem or fallback


def ensure_directory(directory: Path) -> None:
    """Create *directory* ``0700`` or check an existing one (:func:`ensure_private_directory`;
    :class:`UnsafePathError` when another user owns it, it is a link or others may write)."""
    ensure_private_directory(directory)


def unique_stem(directory: Path, stem: str) -> str:
    """*stem* with a random part another user cannot guess: ``<stem>-<12 hex digits>``.

    The files are then created exclusively (:func:`write_private`), so a name that someone did
    manage to plant fails the write rather than being written through.
    """
    return f"{stem}-{random_suffix()}"


def write_private(
    path: str | os.PathLike[str], data: str | bytes, *, replace: bool = False
) -> None:
    """Write *data* to a new file *path*, mode ``0600``, never following a link.

    Without *replace* the file must not exist (``O_EXCL``: ``FileExistsError`` otherwise);
    with it, an existing file is replaced atomically by a new one (a link is replaced, never
    followed). See :func:`obs.private_files.write_private`.
    """
    _write_private(path, data, replace=replace)


def prune(directory: Path, max_files: int) -> list[Path]:
    """Remove the oldest profiles beyond *max_files*; return the files removed."""
    pairs: list[tuple[float, str]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    names = {entry.name for entry in entries}
    for entry in entries:
        if not entry.name.endswith(HTML_SUFFIX):
            continue
        stem = entry.name[: -len(HTML_SUFFIX)]
        if stem + SPEEDSCOPE_SUFFIX not in names:
            continue
        try:
            pairs.append((entry.stat().st_mtime, stem))
        except OSError:
            continue
    pairs.sort(reverse=True)
    removed: list[Path] = []
    for _, stem in pairs[max(max_files, 0) :]:
        for suffix in (HTML_SUFFIX, SPEEDSCOPE_SUFFIX):
            path = directory / (stem + suffix)
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed
