from __future__ import annotations

import pytest

from obs.dashboards import DashboardOptions
from obs.dashboards.options import parse_availability_slo, parse_latency_slo, parse_min_requests
from obs.exceptions import ConfigError


def test_defaults_match_the_example_stack() -> None:
    options = DashboardOptions()
    assert (options.prometheus_uid, options.loki_uid, options.pyroscope_uid) == (
        "prometheus",
        "loki",
        None,
    )
    assert options.metric("http_server_active_requests") == "http_server_active_requests"


def test_prefix_is_prepended() -> None:
    assert DashboardOptions(metric_prefix="shop_").metric("x") == "shop_x"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prometheus_uid": "a b"}, "prometheus_uid='a b' is not a Grafana data source uid"),
        ({"pyroscope_uid": ""}, "pyroscope_uid='' is not"),
        ({"metric_prefix": "1x_"}, "cannot start a Prometheus metric name"),
        ({"availability_slo": 1.0}, "availability_slo=1.0 is invalid; use a fraction from 90"),
        ({"availability_slo": 0.5}, "availability_slo=0.5 is invalid"),
        ({"latency_slo_seconds": 0.3}, "0.3s is not a bucket boundary"),
        ({"latency_slo_ratio": 1.0}, "latency_slo_ratio=1.0 is invalid"),
        ({"latency_slo_ratio": 0.0099}, "latency_slo_ratio=0.0099 is invalid"),
        ({"min_requests": -1}, "min_requests=-1 is invalid; use 0 to"),
        ({"min_requests": 10**10}, "min_requests=10000000000 is invalid"),
        ({"grafana_url": "grafana:3000"}, "not an http"),
        ({"runbook_url": "wiki/slo"}, "runbook_url='wiki/slo' is not an http"),
        ({"service_name": 'a"b'}, "must be non-empty"),
    ],
)
def test_invalid_options_raise_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DashboardOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [("99.9", 0.999), ("99.95%", 0.9995), ("90", 0.9)])
def test_availability_slo_is_given_in_percent(text: str, expected: float) -> None:
    assert parse_availability_slo(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5s@99", (0.5, 0.99)), ("250ms@99.9", (0.25, 0.999)), ("1s @ 95%", (1.0, 0.95))],
)
def test_latency_slo_is_threshold_at_percent(text: str, expected: tuple[float, float]) -> None:
    assert parse_latency_slo(text) == expected


@pytest.mark.parametrize("text", ["0.5s", "fast@99", "0.5@99", "1s@abc"])
def test_bad_latency_slo_says_what_to_give(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--slo-latency .* is invalid; give THRESHOLD@PERCENT"):
        parse_latency_slo(text)


@pytest.mark.parametrize("text", ["100", "0", "abc", "50", "0.999", "99.99999999999", "nan"])
def test_bad_availability_slo_says_what_to_give(text: str) -> None:
    """Checked in percent, the option's own unit: 0.999 is not read as a fraction."""
    with pytest.raises(
        ConfigError,
        match=r"^--slo-availability .* is invalid; give a percentage from 90 to 99.999999 %",
    ):
        parse_availability_slo(text)


@pytest.mark.parametrize("text", ["0.5s@100", "0.5s@0", "0.5s@0.99", "0.005s@50", "1s@99.99999999"])
def test_latency_slo_percent_is_range_checked_in_percent(text: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^--slo-latency .* is invalid; give THRESHOLD@PERCENT with a percentage from 90 ",
    ):
        parse_latency_slo(text)


def test_latency_slo_threshold_names_the_flag() -> None:
    with pytest.raises(
        ConfigError, match=r"^--slo-latency '0.3s@99' is invalid: 0.3s is not a bucket boundary"
    ):
        parse_latency_slo("0.3s@99")


@pytest.mark.parametrize("value", [-1, 10**9 + 1])
def test_min_requests_names_the_flag(value: int) -> None:
    with pytest.raises(ConfigError, match=rf"^--min-requests {value} is invalid; give 0 to"):
        parse_min_requests(value)
