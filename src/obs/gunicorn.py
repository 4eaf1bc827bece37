"""A gunicorn configuration module: metrics that add up across workers, logs through obs.

    gunicorn -c python:obs.gunicorn -w 4 app:app

or, from a configuration file of your own, ``from obs.gunicorn import *``. It provides:

- ``on_starting``: check ``PROMETHEUS_MULTIPROC_DIR`` and clear what dead processes left in it
  (a binary upgrade's old workers keep theirs; if unset, a new ``0700``
  directory with an unpredictable name under the temporary directory, removed again at exit;
  a directory of another user, a symbolic link, or one writable by others is refused);
- ``post_fork``/``worker_exit``: each worker's side file (exemplars, GC counts) from its start
  to its last request;
- ``child_exit``: fold the dead worker's values into the aggregate (``--max-requests`` recycling
  keeps the directory and the scrape flat);
- ``when_ready``/``pre_fork``: the master's GC counts;
- ``logger_class``: gunicorn's own logs as obs log lines (JSON when not on a terminal); its
  "Error handling request" line for an exception that left the app carries the request's
  ``request_id`` (the request is over by then, its context gone: obs tags the exception).

Importing it sets ``PROMETHEUS_MULTIPROC_DIR`` (when unset) so that an app loaded with
``--preload`` already creates its metrics in multiprocess mode.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from obs.private_files import ensure_private_directory

# Set before the app is loaded (with --preload, before on_starting), and inherited by workers.
# mkdtemp: 0700 and a name no other user can guess and create first.
_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="obs-prometheus-multiproc-")
# gunicorn logs (and obs counts log lines) before on_starting clears the directory; a directory
# that is not private is refused here, before anything is written to it.
ensure_private_directory(os.environ["PROMETHEUS_MULTIPROC_DIR"])

import sys  # noqa: E402
from typing import Any  # noqa: E402

import structlog  # noqa: E402
from gunicorn.glogging import Logger  # noqa: E402

from obs.http.observation import request_id_of  # noqa: E402
from obs.logs import configure_logging  # noqa: E402
from obs.prometheus import multiprocess  # noqa: E402

multiprocess.ensure_multiprocess_values()

__all__ = [
    "ObsLogger",
    "child_exit",
    "logger_class",
    "on_exit",
    "on_starting",
    "post_fork",
    "pre_fork",
    "when_ready",
    "worker_exit",
]


class ObsLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with its error (and, if enabled, access) log routed through obs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging()

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        request_id = request_id_of(sys.exc_info()[1])
        if request_id is None:
            super().exception(msg, *args, **kwargs)
            return
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            super().exception(msg, *args, **kwargs)


logger_class = ObsLogger


def on_starting(server: Any) -> None:
    multiprocess.prepare()


def when_ready(server: Any) -> None:
    multiprocess.write_side_file()


def pre_fork(server: Any, worker: Any) -> None:
    multiprocess.write_side_file()


def post_fork(server: Any, worker: Any) -> None:
    multiprocess.start_side_file()


def worker_exit(server: Any, worker: Any) -> None:
    multiprocess.write_side_file()


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.fold_dead_worker(worker.pid)


def on_exit(server: Any) -> None:
    path = multiprocess.directory()
    if _OWN_DIRECTORY and path:  # at interpreter exit: the master still logs its goodbye
        atexit.register(shutil.rmtree, path, ignore_errors=True)
