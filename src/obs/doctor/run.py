"""Which checks run for which options, in the order a reader fixes things."""

from __future__ import annotations

from obs.doctor import process, profiling, prometheus, service
from obs.doctor.findings import Finding
from obs.doctor.http import check_url


def run_checks(
    url: str | None = None,
    prometheus_url: str | None = None,
    pid: int | None = None,
    *,
    metrics_path: str = "/metrics",
    request_id_header: str = "X-Request-ID",
) -> list[Finding]:
    """Every check the options allow: ``url`` (the service), ``prometheus_url``, ``pid``.

    An option that cannot name what it should (not an http URL, no such pid, not a Python
    process) raises ``ConfigError``.
    """
    if url is not None:
        check_url("--url", url)
    if prometheus_url is not None:
        check_url("--prometheus", prometheus_url)
    if pid is not None:
        process.check_pid(pid)
    findings: list[Finding] = []
    info = process.ProcessInfo.read(pid) if pid is not None else None
    if url is not None:
        probe = service.ServiceProbe(url, metrics_path, request_id_header)
        findings.append(service.check_reachable(probe))
        findings.append(service.check_openmetrics(probe))
        findings.append(service.check_exemplars(probe))
        findings.append(service.check_outermost(probe))
        findings.append(
            service.check_logging(probe, process.log_format(info) if info is not None else None)
        )
    if info is not None:
        findings.append(process.check_access_loggers(info))
        findings.extend(process.check_multiprocess(info))
        findings.append(profiling.check_py_spy(info.pid))
        findings.append(profiling.check_ptrace(info.pid))
    if prometheus_url is not None:
        findings.append(prometheus.check_exemplar_storage(prometheus_url))
        if url is not None:
            findings.append(prometheus.check_scrapes_service(prometheus_url, url))
    return findings
