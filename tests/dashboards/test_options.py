from __future__ import annotations

import pytest

from obs.dashboards import DashboardOptions
from obs.exceptions import ConfigError


def test_defaults_match_the_example_stack() -> None:
    options = DashboardOptions()
    assert (options.prometheus_uid, options.loki_uid, options.pyroscope_uid) == ("prometheus", "loki", None)
    assert options.metric("http_server_active_requests") == "http_server_active_requests"


def test_prefix_is_prepended() -> None:
    assert DashboardOptions(metric_prefix="shop_").metric("x") == "shop_x"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prometheus_uid": "a b"}, "prometheus_uid='a b' is not a Grafana data source uid"),
        ({"pyroscope_uid": ""}, "pyroscope_uid='' is not"),
        ({"metric_prefix": "1x_"}, "cannot start a Prometheus metric name"),
        ({"availability_slo": 1.0}, "availability SLO 1.0 is invalid"),
        ({"latency_p99_seconds": 0}, "positive number of seconds"),
        ({"service_name": 'a"b'}, "must be non-empty"),
    ],
)
def test_invalid_options_raise_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DashboardOptions(**kwargs)  # type: ignore[arg-type]
