"""Prometheus: obs's lean metric families, their text and OpenMetrics output, the ``/metrics``
exposition (content negotiation, basic auth) and, in :mod:`.multiprocess`, metrics that add up
across worker processes. Knows nothing of HTTP frameworks or logging."""
