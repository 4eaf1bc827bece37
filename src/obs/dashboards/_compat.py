"""grafana-foundation-sdk quirks obs works around, in one place.

Since 0.0.x the SDK warns ``DeprecationWarning: Prefer using dashboardv2.Dashboard instead.``
from the *class body* of its classic and v2beta1 ``Dashboard`` models, so merely importing the classic
builders warns (and fails under ``-W error``). obs writes classic JSON on purpose, for
Grafana 11/12 file provisioning, and converts it to v2 itself (:mod:`obs.dashboards.v2`), so the
warning says nothing actionable: the module is imported once here with it silenced. Python
caches the module, so later imports (obs's and a team's ``*.dashboard.py``) do not warn.
"""

from __future__ import annotations

import warnings

#: The message the SDK warns with; a test names it so that an SDK upgrade that changes it shows.
CLASSIC_DEPRECATION = "Prefer using dashboardv2.Dashboard instead."

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=CLASSIC_DEPRECATION, category=DeprecationWarning)
    # The classic and the v2beta1 models and builders all carry it; the data source builders
    # (prometheus, loki) import v2beta1.
    import grafana_foundation_sdk.builders.dashboardv2beta1  # noqa: F401
    from grafana_foundation_sdk.builders import dashboard as _classic_builders  # noqa: F401
    from grafana_foundation_sdk.models import dashboard as _classic_models  # noqa: F401
    from grafana_foundation_sdk.models import dashboardv2beta1 as _v2beta1_models  # noqa: F401
