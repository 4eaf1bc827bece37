"""pyinstrument's internals that obs relies on (obs.profiling._compat) still exist."""

from __future__ import annotations

from pyinstrument.frame_info import frame_info_get_identifier, parse_frame_info

from obs.profiling import _compat
from tests.conftest import assert_private_names_exist


def test_every_name_exists_in_the_installed_pyinstrument() -> None:
    assert_private_names_exist(_compat.PRIVATE_NAMES, "pyinstrument", _compat.installed_version())


def test_frame_identifiers_parse_as_pyinstrument_reads_them() -> None:
    text = _compat.frame_identifier("handler", "app.py", 10, 12)
    identifier, attributes = parse_frame_info(text)
    assert identifier == frame_info_get_identifier(text)
    assert identifier.split(_compat.IDENTIFIER_SEP) == ["handler", "app.py", "10"]
    assert attributes == [_compat.LINE_NUMBER + "12"]
    assert parse_frame_info(_compat.root_identifier("MainThread", "<thread>", 7))[1] == []
