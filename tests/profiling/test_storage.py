from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from obs.profiling.storage import ensure_directory, prune, safe_stem, unique_stem, write_private


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("7b1c-42", "7b1c-42"),
        ("../../etc/passwd", "etc_passwd"),
        ("a b/c\\d", "a_b_c_d"),
        (".hidden", "hidden"),
        ("", "profile"),
        ("///", "profile"),
        ("x" * 300, "x" * 100),
    ],
)
def test_safe_stem(text: str, stem: str) -> None:
    assert safe_stem(text) == stem


def test_unique_stem_has_a_part_no_one_can_guess(tmp_path: Path) -> None:
    stems = {unique_stem(tmp_path, "r1") for _ in range(100)}
    assert len(stems) == 100
    assert all(re.fullmatch(r"r1-[0-9a-f]{12}", stem) for stem in stems)


def test_directory_and_files_are_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "profiles"
    ensure_directory(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    path = directory / "p.html"
    write_private(path, "<html/>")
    assert path.read_text() == "<html/>"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_is_never_written_through(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text("old")
    with pytest.raises(FileExistsError):
        write_private(path, "<html/>")
    assert path.read_text() == "old"
    path.chmod(0o644)
    write_private(path, "<html/>", replace=True)  # replaced by a new owner-only file
    assert path.read_text() == "<html/>" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.html"]


def test_prune_keeps_the_newest_pairs_and_nothing_else_is_touched(tmp_path: Path) -> None:
    for i in range(5):
        for suffix in (".html", ".speedscope.json"):
            path = tmp_path / f"r{i}{suffix}"
            path.write_text("x")
            os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "notes.html").write_text("not a profile: it has no speedscope twin")
    (tmp_path / "pid1.svg").write_text("<svg/>")
    removed = prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == sorted(
        f"r{i}{s}" for i in range(3) for s in (".html", ".speedscope.json")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.html", "pid1.svg", "r3.html", "r3.speedscope.json", "r4.html", "r4.speedscope.json",
    ]  # fmt: skip


def test_prune_of_a_missing_directory_is_harmless(tmp_path: Path) -> None:
    assert prune(tmp_path / "nope", 1) == []
