"""Under obs, a keep-alive client's request after an app's unhandled exception never fails,
through every server that obs answers under (uvicorn h11 and httptools, hypercorn,
gunicorn+uvicorn, gunicorn gthread) and one it leaves the answer to (waitress).

Before obs's 500 said ``Connection: close`` (or, under waitress, was left to the server), in
200 pairs: 4-20 failures under uvicorn, 9 under gunicorn gthread, 40 under waitress; ``python
-m tests.integration.keepalive`` prints the figures, bare apps included.
"""

from __future__ import annotations

import pytest

from tests.integration.keepalive import CASES, Case, resets

PAIRS = 60
UNDER_OBS = [case for case in CASES if ", obs" in case.name]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", UNDER_OBS, ids=[case.name for case in UNDER_OBS])
def test_no_request_fails_after_an_apps_exception(case: Case) -> None:
    assert resets(case, PAIRS) == 0
