"""prometheus_client's private names that obs reads (obs.prometheus._compat) still exist."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from obs.prometheus import _compat


def test_every_private_name_exists_in_the_installed_prometheus_client() -> None:
    missing = _compat.missing_names()
    assert not missing, (
        f"prometheus-client {_compat.installed_version()} no longer has: {'; '.join(missing)}"
    )


def test_a_renamed_name_is_reported_with_the_symbol(monkeypatch: pytest.MonkeyPatch) -> None:
    names = (
        *_compat.PRIVATE_NAMES,
        ("prometheus_client.registry.CollectorRegistry._no_such_lock", "a test"),
        ("prometheus_client.no_such_module.X", "a test"),
    )
    monkeypatch.setattr(_compat, "PRIVATE_NAMES", names)
    assert _compat.missing_names() == [
        "prometheus_client.registry.CollectorRegistry._no_such_lock (used for a test)",
        "prometheus_client.no_such_module.X (used for a test)",
    ]


def test_the_accessors_read_what_they_name() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "help", ["route"], registry=registry)
    collectors, target_info = _compat.registry_collectors(registry)
    assert collectors == [histogram] and target_info is None
    assert _compat.histogram_name(histogram) == "h_seconds"
    assert _compat.histogram_labelnames(histogram) == ("route",)
    assert _compat.is_valid_metric_name("a_b") and not _compat.is_valid_metric_name("a-b")
    assert _compat.is_valid_label_name("le") and not _compat.is_valid_label_name("a.b")
