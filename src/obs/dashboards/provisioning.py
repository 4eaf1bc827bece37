"""Grafana provisioning files: the data sources and a file provider for the dashboards.

Grafana reads them from ``/etc/grafana/provisioning/{datasources,dashboards}/`` at start-up;
``examples/stack/compose.yaml`` mounts them there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from obs.dashboards.common import LOGS_UID, PYROSCOPE_TYPE, SERVICE_VAR
from obs.dashboards.options import REQUEST_ID, DashboardOptions

#: Where the compose file mounts ``dashboards/*.json`` inside the Grafana container.
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/obs"
FOLDER = "obs"


def exemplar_logs_url(options: DashboardOptions) -> str:
    """Opens the logs dashboard on one request's lines of the generated service.

    Ten minutes around the exemplar; the service is carried so that, with several services in
    Loki, the link does not open another service's (empty) lines.
    """
    service = urlencode({f"var-{SERVICE_VAR}": options.service_name})
    return (
        f"/d/{LOGS_UID}?{service}&var-{REQUEST_ID}=${{__value.raw}}"
        "&time=${__value.time}&time.window=600000"
    )


def datasources(options: DashboardOptions) -> dict[str, Any]:
    """``provisioning/datasources/obs.yml``: Prometheus (exemplars -> logs), Loki, Pyroscope."""
    sources: list[dict[str, Any]] = [
        {
            "name": "Prometheus",
            "type": "prometheus",
            "uid": options.prometheus_uid,
            "access": "proxy",
            "url": options.prometheus_url,
            "isDefault": True,
            "editable": False,
            "jsonData": {
                "httpMethod": "POST",
                "timeInterval": "15s",
                # An exemplar's request_id label becomes a link to that request's log lines.
                "exemplarTraceIdDestinations": [
                    {
                        "name": REQUEST_ID,
                        "url": exemplar_logs_url(options),
                        "urlDisplayLabel": "Log lines of this request",
                    }
                ],
            },
        },
        {
            "name": "Loki",
            "type": "loki",
            "uid": options.loki_uid,
            "access": "proxy",
            "url": options.loki_url,
            "editable": False,
            "jsonData": {"maxLines": 1000},
        },
    ]
    if options.pyroscope_uid is not None:
        sources.append(
            {
                "name": "Pyroscope",
                "type": PYROSCOPE_TYPE,
                "uid": options.pyroscope_uid,
                "access": "proxy",
                "url": options.pyroscope_url,
                "editable": False,
            }
        )
    return {"apiVersion": 1, "datasources": sources}


def dashboard_providers() -> dict[str, Any]:
    """``provisioning/dashboards/obs.yml``: load every JSON file in :data:`DASHBOARDS_PATH`."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "obs",
                "orgId": 1,
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }
