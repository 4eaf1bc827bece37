"""obs.private_files: the one rule for private directories and files on a shared host."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from obs.private_files import (
    UnsafePathError,
    check_private_directory,
    create_exclusive,
    ensure_private_directory,
    open_private,
    open_private_directory,
    write_private,
)

NOBODY = 65534


def test_a_new_directory_is_owner_only_and_an_existing_one_is_checked(tmp_path: Path) -> None:
    made = ensure_private_directory(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    fd = open_private_directory(tmp_path / "c")
    try:
        assert stat.S_ISDIR(os.fstat(fd).st_mode)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o700
    finally:
        os.close(fd)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    for check in (check_private_directory, ensure_private_directory, open_private_directory):
        with pytest.raises(UnsafePathError, match="chmod go-w"):
            check(shared)


def test_a_directory_behind_a_link_or_of_another_user_is_refused(tmp_path: Path) -> None:
    real = ensure_private_directory(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        check_private_directory(link)
    with pytest.raises(OSError):  # O_NOFOLLOW: the link itself is not opened as a directory
        os.close(open_private_directory(link))
    if os.geteuid() != 0:
        pytest.fail("this test needs root to give a directory to another user (CI runs as root)")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"owned by uid {NOBODY}"):
        os.close(open_private_directory(theirs))


def test_new_files_never_follow_or_reuse_what_is_already_there(tmp_path: Path) -> None:
    directory = ensure_private_directory(tmp_path / "d")
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    (directory / "planted").symlink_to(victim)
    dir_fd = open_private_directory(directory)
    try:
        with pytest.raises(FileExistsError):
            create_exclusive("planted", dir_fd=dir_fd)
        fd = create_exclusive("fresh", dir_fd=dir_fd)
        os.close(fd)
    finally:
        os.close(dir_fd)
    assert stat.S_IMODE((directory / "fresh").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(directory / "planted", "x")
    write_private(directory / "planted", "mine", replace=True)  # the link is replaced
    assert victim.read_text() == "root's file"
    assert not (directory / "planted").is_symlink()
    assert (directory / "planted").read_text() == "mine"
    assert sorted(p.name for p in directory.iterdir()) == ["fresh", "planted"]  # no temp left
    link = tmp_path / "link-to-victim"
    link.symlink_to(victim)
    with pytest.raises(OSError):  # open_private() does not follow a link either
        os.close(open_private(link))
    assert victim.read_text() == "root's file"
