"""structlog's private names that obs reads (obs.logs._compat) still exist."""

from __future__ import annotations

import structlog

from obs.logs import _compat
from tests.conftest import assert_private_names_exist


def test_every_private_name_exists_in_the_installed_structlog() -> None:
    assert_private_names_exist(_compat.PRIVATE_NAMES, "structlog", _compat.installed_version())


def test_the_context_registry_holds_structlogs_own_variables() -> None:
    assert _compat.CONTEXT_VARS is not None
    structlog.contextvars.bind_contextvars(compat_probe=1)
    try:
        assert _compat.KEY_PREFIX + "compat_probe" in _compat.CONTEXT_VARS
    finally:
        structlog.contextvars.clear_contextvars()
