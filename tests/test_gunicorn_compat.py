"""gunicorn's undocumented names obs relies on (obs._gunicorn_compat) still exist."""

from __future__ import annotations

import socket

from gunicorn.config import Config
from gunicorn.http.wsgi import Response

from obs import _gunicorn_compat
from tests.conftest import assert_private_names_exist
from tests.test_wsgi import GunicornRequest


def test_every_name_exists_in_the_installed_gunicorn() -> None:
    assert_private_names_exist(
        _gunicorn_compat.PRIVATE_NAMES, "gunicorn", _gunicorn_compat.installed_version()
    )


def test_the_closer_of_a_gunicorn_response_makes_it_close_and_nothing_else_has_one() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        response = Response(GunicornRequest(), ours, Config())
        close = _gunicorn_compat.connection_closer(response.start_response)
        assert close is not None and not response.must_close
        close()
        assert response.must_close

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        pass

    class Other:
        def start_response(self, status: str, headers: list[tuple[str, str]]) -> None:
            pass

        def force_close(self) -> None:
            pass

    assert _gunicorn_compat.connection_closer(start_response) is None
    assert _gunicorn_compat.connection_closer(Other().start_response) is None
