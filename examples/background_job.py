"""A background job with JSON logs and a profile of every run: no server, no py-spy.

Each run writes profiles/nightly-report-<time>.html (open it in a browser) and
.speedscope.json (open it at https://www.speedscope.app); OBS_PROFILE_DIR moves them.

Run:  python examples/background_job.py
Then: ls profiles/
"""

from __future__ import annotations

import hashlib

import obs

obs.configure_logging(service_name="nightly-report")
log = obs.get_logger(__name__)


def checksum_orders(count: int) -> str:
    """The slow part of the report, where the profile shows the time goes."""
    digest = hashlib.sha256()
    for order_id in range(count):
        digest.update(f"order-{order_id}".encode())
        digest.update(hashlib.sha256(str(order_id).encode()).digest())
    return digest.hexdigest()


def main() -> None:
    # Or decorate the job's function: @obs.profiled (named after the function).
    with obs.profile("nightly-report") as run:
        log.info("report started")
        checksum = checksum_orders(200_000)
        log.info("report finished", checksum=checksum)
    log.info("profile written", html=str(run.html_path), speedscope=str(run.speedscope_path))


if __name__ == "__main__":
    main()
