"""PromQL building blocks shared by the dashboards and the alert rules.

Every metric name comes from :mod:`obs.metrics` through :meth:`DashboardOptions.metric`, so a
renamed metric (or a prefix) changes every query at once.
"""

from __future__ import annotations

from obs.dashboards.options import DashboardOptions
from obs.metrics import REQUEST_DURATION, ROUTE, STATUS

#: Dashboard variables the selectors refer to; tests substitute them before running promtool.
JOB_VAR = "job"
INSTANCE_VAR = "instance"
ROUTE_VAR = "http_route"
RATE_INTERVAL = "$__rate_interval"

#: Matchers of the dashboard variables, for queries filtered by job and instance.
TARGET_MATCHERS: tuple[str, ...] = (f'job=~"${JOB_VAR}"', f'instance=~"${INSTANCE_VAR}"')
#: The same plus the selected routes.
ROUTE_MATCHERS: tuple[str, ...] = (*TARGET_MATCHERS, f'{ROUTE}=~"${ROUTE_VAR}"')
#: Responses the server failed: a 5xx status.
SERVER_ERROR = f'{STATUS}=~"5.."'


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}``, or the bare name without matchers."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def rate(metric: str, matchers: tuple[str, ...], *, window: str = RATE_INTERVAL) -> str:
    """Per-second rate of a counter (or a histogram series) over *window*."""
    return f"rate({selector(metric, *matchers)}[{window}])"


def sum_rate(
    metric: str, matchers: tuple[str, ...], *, by: tuple[str, ...] = (), window: str = RATE_INTERVAL
) -> str:
    """``sum by (labels) (rate(...))``; ``sum(rate(...))`` when *by* is empty."""
    grouping = f" by ({', '.join(by)}) " if by else ""
    return f"sum{grouping}({rate(metric, matchers, window=window)})"


def quantile(
    q: float,
    histogram: str,
    matchers: tuple[str, ...],
    *,
    by: tuple[str, ...] = (),
    window: str = RATE_INTERVAL,
) -> str:
    """The *q* quantile of a classic histogram, from its ``_bucket`` series."""
    inner = sum_rate(f"{histogram}_bucket", matchers, by=("le", *by), window=window)
    return f"histogram_quantile({q:g}, {inner})"


def request_rate(
    options: DashboardOptions,
    matchers: tuple[str, ...],
    *,
    by: tuple[str, ...] = (),
    window: str = RATE_INTERVAL,
) -> str:
    """Requests per second, from the duration histogram's ``_count``."""
    return sum_rate(f"{options.metric(REQUEST_DURATION)}_count", matchers, by=by, window=window)


def error_ratio(
    options: DashboardOptions, matchers: tuple[str, ...], *, window: str = RATE_INTERVAL
) -> str:
    """Fraction of requests answered with a 5xx status (0 when there is traffic and no error)."""
    count = f"{options.metric(REQUEST_DURATION)}_count"
    errors = sum_rate(count, (*matchers, SERVER_ERROR), window=window)
    total = sum_rate(count, matchers, window=window)
    # `or vector(0)` keeps the ratio at 0 instead of "no data" while nothing has failed.
    return f"(({errors}) or vector(0)) / {total}"


def mean(
    histogram: str,
    matchers: tuple[str, ...],
    *,
    by: tuple[str, ...] = (),
    window: str = RATE_INTERVAL,
) -> str:
    """The exact average of a histogram's observations: ``rate(_sum) / rate(_count)``."""
    total = sum_rate(f"{histogram}_sum", matchers, by=by, window=window)
    count = sum_rate(f"{histogram}_count", matchers, by=by, window=window)
    return f"{total} / {count}"


def bounded_quantile(
    q: float,
    histogram: str,
    matchers: tuple[str, ...],
    *,
    by: tuple[str, ...] = (),
    window: str = RATE_INTERVAL,
) -> str:
    """The *q* quantile, tightened by the exact mean where the buckets are too coarse.

    ``histogram_quantile`` interpolates inside a bucket, so its resolution is the bucket width:
    with every body empty, the first size bucket (0-100 B) gives p90 = 90 B; with every request
    at 0.8 ms, the first duration bucket (0-5 ms) gives p50 = 2.5 ms. For values that cannot be
    negative, Markov's inequality bounds the quantile by the mean: ``x_q <= mean / (1 - q)``, so
    the smaller of the two is still an upper bound of the true quantile, and exact (0) for empty
    bodies. Both sides are monotonic in *q*, so p50 <= p90 <= p99 still holds.
    """
    estimate = quantile(q, histogram, matchers, by=by, window=window)
    bound = f"({mean(histogram, matchers, by=by, window=window)}) / {1 - q:.6g}"
    return f"({estimate} < {bound}) or ({bound})"
