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


CHECKS = (check_private_directory, ensure_private_directory, open_private_directory)


def _use(check: object, path: Path) -> None:
    result = check(path)  # type: ignore[operator]
    if isinstance(result, int):
        os.close(result)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_directory_under_a_parent_another_user_owns_is_refused(
    check: object, tmp_path: Path, stranger: int
) -> None:
    """The attack: the other user owns the parent, so it could rename the checked directory
    away after obs accepted it and put one of its own (with forged files) in its place."""
    squat = tmp_path / "squat"
    squat.mkdir(mode=0o755)
    accepted_before = ensure_private_directory(squat / "metrics")  # ours, 0700
    os.chown(squat, stranger, stranger)
    for target in (accepted_before, squat / "new"):
        with pytest.raises(UnsafePathError, match=rf"{squat}, above .* owned by uid {stranger}"):
            _use(check, target)
    assert not (squat / "new").exists(), "created a directory inside the other user's"
    deeper = squat / "a" / "b"
    with pytest.raises(UnsafePathError, match=f"owned by uid {stranger}"):
        _use(check, deeper)
    assert not (squat / "a").exists()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_group_writable_ancestor_is_refused_unless_sticky(check: object, tmp_path: Path) -> None:
    parent = tmp_path / "team"
    parent.mkdir()
    ensure_private_directory(parent / "state")
    parent.chmod(0o775)
    with pytest.raises(UnsafePathError, match=rf"not sticky .*mode 0775.*chmod go-w {parent}"):
        _use(check, parent / "state")
    above = tmp_path / "up"
    (above / "mid").mkdir(parents=True)
    above.chmod(0o777)  # two levels up
    with pytest.raises(UnsafePathError, match=f"{above}, above"):
        _use(check, above / "mid" / "state")
    parent.chmod(0o1777)  # sticky, like /tmp: others cannot rename what is ours
    _use(check, parent / "state")


def test_a_link_among_the_ancestors_must_be_trusted_and_so_must_its_target(
    tmp_path: Path, stranger: int
) -> None:
    real = tmp_path / "real"
    ensure_private_directory(real / "state")
    mine = tmp_path / "mine"
    mine.symlink_to(real)
    for check in CHECKS:
        _use(check, mine / "state")  # a link of ours to a directory of ours
    theirs = tmp_path / "theirs"
    theirs.symlink_to(real)
    os.lchown(theirs, stranger, stranger)
    with pytest.raises(UnsafePathError, match=f"{theirs}, above .* symbolic link owned by uid"):
        check_private_directory(theirs / "state")
    squat = tmp_path / "squat"
    squat.mkdir()
    ensure_private_directory(squat / "state")
    os.chown(squat, stranger, stranger)
    behind = tmp_path / "behind"
    behind.symlink_to(squat)  # our link, but it leads through the other user's directory
    with pytest.raises(UnsafePathError, match=f"{squat}, above .* owned by uid {stranger}"):
        check_private_directory(behind / "state")


def test_the_usual_places_pass(tmp_path: Path) -> None:
    import shutil
    import tempfile
    import uuid

    made = []
    try:
        for base in ("/tmp", "/dev/shm", os.path.expanduser("~"), tempfile.gettempdir()):
            if os.path.isdir(base):
                made.append(ensure_private_directory(Path(base) / f"obs-t-{uuid.uuid4().hex}"))
        made.append(Path(tempfile.mkdtemp(prefix="obs-t-")))
        for path in [*made, tmp_path]:
            check_private_directory(path)
            os.close(open_private_directory(path / "sub"))
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


def test_parents_obs_creates_pass_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = ensure_private_directory(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
