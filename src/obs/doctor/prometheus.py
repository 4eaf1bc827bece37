"""Checks of a Prometheus (``--prometheus``): started with exemplar storage, and scraping
the service (``--url``) successfully."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from obs.doctor.findings import Finding, fail, ok, skip
from obs.doctor.http import get

EXEMPLAR_FEATURE = "exemplar-storage"


def _api(prometheus: str, path: str) -> object:
    response = get(prometheus.rstrip("/") + path)
    if response.status != 200:
        raise OSError(f"{path} answered {response.status}")
    return json.loads(response.body)["data"]


def check_exemplar_storage(prometheus: str) -> Finding:
    name = "Prometheus exemplar storage"
    try:
        flags = _api(prometheus, "/api/v1/status/flags")
    except (OSError, ValueError, KeyError) as exc:
        return fail(name, f"{prometheus} does not answer its API ({exc})", "check --prometheus")
    features = str(flags.get("enable-feature", "") if isinstance(flags, dict) else "")
    if EXEMPLAR_FEATURE in features.split(","):
        return ok(name, f"--enable-feature={features}")
    return fail(
        name,
        "started without exemplar storage: exemplars are dropped at every scrape",
        f"start Prometheus with --enable-feature={EXEMPLAR_FEATURE}",
    )


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def check_scrapes_service(prometheus: str, url: str) -> Finding:
    name = "Prometheus scrapes the service"
    try:
        targets = _api(prometheus, "/api/v1/targets")
    except (OSError, ValueError, KeyError) as exc:  # the exemplar storage check fails on it
        return skip(name, f"{prometheus} does not answer its API ({exc})", "fix --prometheus first")
    wanted = _host_port(url)
    active = targets.get("activeTargets", []) if isinstance(targets, dict) else []
    for target in active:
        if _host_port(target.get("scrapeUrl", "")) == wanted:
            if target.get("health") == "up":
                return ok(name, f"job {target.get('labels', {}).get('job', '?')} is up")
            error = target.get("lastError") or target.get("health")
            return fail(
                name,
                f"the target is {target.get('health')}: {error}",
                "fix the error Prometheus reports for it",
            )
    return fail(
        name,
        f"no scrape target at {wanted[0]}:{wanted[1]} among {len(active)}",
        "add the service to scrape_configs (static_configs targets or service discovery)",
    )
