"""Where in-process profiles go: a private directory, owner-only files, a cap on how many.

Profiles show source paths and function names, so the directory is created ``0700`` and every
file ``0600``. Each profile is a pair ``<id>.speedscope.json`` + ``<id>.html``; beyond
``max_files`` pairs the oldest are removed. Files that are not such a pair are never touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SPEEDSCOPE_SUFFIX = ".speedscope.json"
HTML_SUFFIX = ".html"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


def safe_stem(text: str, fallback: str = "profile") -> str:
    """*text* reduced to a file-name stem: letters, digits, ``._-``; never hidden or empty."""
    stem = _UNSAFE.sub("_", text).strip("._")[:_MAX_STEM]
    return stem or fallback


def ensure_directory(directory: Path) -> None:
    """Create *directory* (and parents) owner-only if missing; an existing one is left as is."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def unique_stem(directory: Path, stem: str) -> str:
    """*stem*, or *stem* with a counter, such that neither output file exists yet."""
    candidate, n = stem, 1
    while (directory / (candidate + HTML_SUFFIX)).exists() or (
        directory / (candidate + SPEEDSCOPE_SUFFIX)
    ).exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def write_private(path: Path, text: str) -> None:
    """Write *text* to a new file *path* readable by its owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        fh.write(text)


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
