"""Private state on a shared host: directories only the serving user can enter, files no other
user can plant or redirect.

obs keeps state in directories (the multiprocess directory, profile directories) that may sit in
a world-writable place such as ``/tmp``. Another local user can create such a directory first,
or plant a symbolic link where obs will write, so that a process running as root creates or
truncates files elsewhere. Every directory obs creates is ``0700``; one that already exists is
used only if it is a real directory (not a symbolic link) owned by the serving user and not
writable by group or others. The same goes, less strictly, for every directory above it (its
*ancestors*, along the path as given and along the resolved one): each must belong to root or
to the serving user and be writable by no one else unless it is sticky (``/tmp``), and a symbolic
link among them must belong to root or to the serving user. Otherwise the owner of a parent could
rename the checked directory away after the check and put one of its own in its place, and
everything obs later does by path would use it. Files are opened with ``O_NOFOLLOW`` and created with ``O_EXCL``
(mode ``0600``), so a planted link or file makes the call fail instead of redirecting it.

This module sits in the lowest layer (it imports nothing of obs but its exceptions) so that both
:mod:`obs.prometheus.multiprocess` and :mod:`obs.profiling` use the same checks.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from obs.exceptions import ObsError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: A new file only: whatever is already at the name (a planted file or link) makes it fail.
_CREATE_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


class UnsafePathError(ObsError):
    """A directory or file obs would use is not private to the serving user."""


def check_private_directory(path: str | os.PathLike[str]) -> None:
    """Raise :class:`UnsafePathError` unless *path* is a real directory owned by this user and
    not writable by group or others, under ancestors only root or this user controls
    (:func:`check_ancestors`).

    The last component must not be a symbolic link: a link planted in ``/tmp`` could point at a
    directory of root's, whose ``*.db`` files obs would then empty.
    """
    where = os.fspath(path)
    check_ancestors(where)
    info = os.lstat(where)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(
            f"{where} is a symbolic link; obs keeps private state only in a real directory. "
            "Point the setting at the directory itself, or remove the link."
        )
    check_directory_status(info, where)


def check_directory_status(info: os.stat_result, where: str) -> None:
    """The checks of :func:`check_private_directory` on a status already read (``fstat`` of a
    descriptor opened with ``O_NOFOLLOW``, so nothing can be swapped in between)."""
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"{where} exists and is not a directory; remove it or pick another.")
    if info.st_uid != os.geteuid():
        raise UnsafePathError(
            f"{where} is owned by uid {info.st_uid}, not by this process's user "
            f"(uid {os.geteuid()}): another user could read or replace obs's files there. "
            "Remove it, or pick a directory of your own."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafePathError(
            f"{where} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"others can write to it and replace obs's files; run: chmod go-w {where}  "
            "(obs creates its directories 0700)."
        )


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _check_ancestor(ancestor: str, info: os.stat_result, where: str) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if not _trusted_owner(info.st_uid):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a directory"
        raise UnsafePathError(
            f"{ancestor}, above {where}, is {kind} owned by uid {info.st_uid} (mode {mode:04o}), "
            f"neither root nor this process's user (uid {os.geteuid()}): its owner could swap "
            f"{where} for a directory of their own; pick a directory whose every parent is "
            "root's or yours."
        )
    if (
        stat.S_ISDIR(info.st_mode)
        and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and not info.st_mode & stat.S_ISVTX
    ):
        raise UnsafePathError(
            f"{ancestor}, above {where}, is writable by other users and not sticky (owner uid "
            f"{info.st_uid}, mode {mode:04o}): they could swap {where} for a directory of their "
            f"own; run: chmod go-w {ancestor}  (or chmod +t), or pick another directory."
        )


def _prefixes(absolute: str) -> list[str]:
    """``/``, ``/a``, ``/a/b`` for ``/a/b/c``: every directory above *absolute*."""
    parts = [part for part in absolute.split(os.sep) if part]
    return [os.sep + os.sep.join(parts[:n]) for n in range(len(parts))]


def check_ancestors(path: str | os.PathLike[str]) -> None:
    """Raise :class:`UnsafePathError` unless every directory above *path* — from ``/`` down to
    its parent, along the path as given (each component as it is, a symbolic link included) and
    along the resolved path — belongs to root or to this user and is writable by no one else
    unless it is sticky (like ``/tmp``).

    Components that do not exist yet are left out: obs creates them itself (``0755``).
    """
    where = os.fspath(path)
    given = os.path.abspath(where)
    resolved = os.path.realpath(os.path.dirname(given))
    for chain, lookup in (
        (_prefixes(given), os.lstat),
        ([*_prefixes(resolved), resolved], os.stat),
    ):
        for ancestor in chain:
            try:
                info = lookup(ancestor)
            except FileNotFoundError:
                break  # the rest is missing too: obs makes it
            _check_ancestor(ancestor, info, where)


def _make_parents(directory: str) -> None:
    """Create the missing directories above *directory*, each ``0755`` (never group- or
    other-writable, whatever the umask), as :func:`check_ancestors` wants them."""
    parent = os.path.dirname(os.path.abspath(directory))
    missing: list[str] = []
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for name in reversed(missing):
        try:
            os.mkdir(name, 0o755)
        except FileExistsError:
            pass


def ensure_private_directory(path: str | os.PathLike[str]) -> Path:
    """Create *path* (and missing parents, ``0755``) with mode ``0700``, or check an existing
    one with :func:`check_private_directory`; return it as a :class:`~pathlib.Path`.

    The ancestors are checked before anything is created in them."""
    directory = Path(path)
    check_ancestors(directory)
    _make_parents(os.fspath(directory))
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    check_private_directory(directory)
    return directory


def open_private_directory(path: str | os.PathLike[str]) -> int:
    """Create *path* (and missing parents) with mode ``0700`` if missing and return a
    descriptor of it, opened without following a link and checked with
    :func:`check_directory_status`, for files made relative to it (:func:`create_exclusive`):
    nothing can be swapped in between the check and the writes. Its ancestors must pass
    :func:`check_ancestors`, checked before anything is created and again once it is open."""
    where = os.fspath(path)
    check_ancestors(where)
    _make_parents(where)
    try:
        os.mkdir(where, 0o700)
    except FileExistsError:
        pass
    fd = os.open(where, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    try:
        check_directory_status(os.fstat(fd), where)
        check_ancestors(where)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_exclusive(name: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """Create the new file *name* (mode ``0600``, relative to *dir_fd* when given) for writing
    and return its descriptor; anything already there, a file or a link, makes it fail with
    :class:`FileExistsError`."""
    return os.open(name, _CREATE_EXCLUSIVE, 0o600, dir_fd=dir_fd)


def open_private(path: str | os.PathLike[str], flags: int = os.O_RDWR) -> int:
    """Open (creating ``0600`` if missing) *path* without following a symbolic link; the file
    must be a regular file of this user. Returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        check_private_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_file(fd: int, path: str | os.PathLike[str]) -> None:
    """Raise :class:`UnsafePathError` unless *fd* is a regular file owned by this user."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        raise UnsafePathError(
            f"{os.fspath(path)} is not a regular file of uid {os.geteuid()}; someone else put "
            "it there. Remove it; obs will create its own."
        )


def write_private(
    path: str | os.PathLike[str], data: str | bytes, *, replace: bool = False
) -> None:
    """Write *data* to a new file *path*, mode ``0600``, never following a link.

    Without *replace* the file must not exist yet (``O_EXCL``): a file or link planted under
    that name makes it fail. With *replace*, *data* goes to a new file with an unpredictable
    name beside *path* that then replaces it atomically (a link at *path* is replaced, never
    followed).
    """
    target = os.fspath(path)
    name = f"{target}.{secrets.token_hex(8)}.tmp" if replace else target
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = create_exclusive(name)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        _remove_quietly(name)
        raise
    os.close(fd)
    if replace:
        try:
            os.replace(name, target)
        except BaseException:
            _remove_quietly(name)
            raise


def random_suffix() -> str:
    """A short random name part another user cannot guess (48 bits)."""
    return secrets.token_hex(6)


def _remove_quietly(name: str) -> None:
    try:
        os.remove(name)
    except OSError:
        pass
