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
- ``pre_exec``: a binary upgrade's new master (``kill -USR2``) shares the directory obs chose;
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
# A binary upgrade's new master (kill -USR2) is handed the old one's directory in pre_exec,
# marked as obs's own: the two masters share it, and the last one out removes it.
_HANDED_OVER = "OBS_GUNICORN_OWN_MULTIPROC_DIR"
_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or (
    os.environ.get(_HANDED_OVER) == os.environ["PROMETHEUS_MULTIPROC_DIR"]
)
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
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
from obs.prometheus.multiprocess.fold import live_writers  # noqa: E402

multiprocess.ensure_multiprocess_values()

__all__ = [
    "ObsLogger",
    "child_exit",
    "logger_class",
    "on_exit",
    "on_starting",
    "post_fork",
    "pre_exec",
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
    warn_about_replaced_hooks(server)


def when_ready(server: Any) -> None:
    multiprocess.write_side_file()
    warn_about_replaced_hooks(server)  # in case on_starting was replaced too


def pre_fork(server: Any, worker: Any) -> None:
    multiprocess.write_side_file()


def post_fork(server: Any, worker: Any) -> None:
    multiprocess.start_side_file()


def worker_exit(server: Any, worker: Any) -> None:
    multiprocess.write_side_file()


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.fold_dead_worker(worker.pid)


def pre_exec(server: Any) -> None:
    # gunicorn starts the new master with the environment it was itself started with, where a
    # directory obs chose is not: without this it would make another one, and the old workers'
    # counts would leave the scrape with their master.
    path = multiprocess.directory()
    if _OWN_DIRECTORY and path:
        server.cfg.env_orig["PROMETHEUS_MULTIPROC_DIR"] = path
        server.cfg.env_orig[_HANDED_OVER] = path


def on_exit(server: Any) -> None:
    path = multiprocess.directory()
    if _OWN_DIRECTORY and path:  # at interpreter exit: the master still logs its goodbye
        atexit.register(_remove_unless_shared, path)


def _remove_unless_shared(path: str) -> None:
    """Remove obs's directory, unless another master's processes still write to it (a binary
    upgrade's old master exits while the new one serves)."""
    try:
        if live_writers(path):
            return
    except OSError:
        return
    shutil.rmtree(path, ignore_errors=True)


# What each hook of obs's does for the user, and the names a replacement that keeps it calls.
_HOOKS: dict[str, tuple[str, frozenset[str]]] = {
    "child_exit": (
        "dead workers are not folded: files and scrape time grow with --max-requests",
        frozenset({"fold_dead_worker"}),
    ),
    "post_fork": ("an idle worker has no process or GC series", frozenset({"start_side_file"})),
    "worker_exit": ("a worker's last exemplars are lost", frozenset({"write_side_file"})),
    "pre_exec": (
        "after kill -USR2 the old workers' counts leave the scrape with their master",
        frozenset(),
    ),
}
_checked = False


def replaced_hooks(cfg: Any) -> list[str]:
    """The hooks of gunicorn configuration *cfg* that replace obs's without calling them
    (``from obs.gunicorn import *`` and then ``def child_exit(server, worker): ...``)."""
    ours = globals()
    return [
        name
        for name, (_, calls) in _HOOKS.items()
        if not _keeps(getattr(cfg, name, None), ours[name], calls | {name})
    ]


def _keeps(hook: Any, own: Any, names: frozenset[str]) -> bool:
    if hook is own:
        return True
    code = getattr(hook, "__code__", None)
    if code is None:  # a callable object or a partial: nothing to read, so no warning
        return True
    referenced: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        referenced.update(current.co_names)
        stack.extend(c for c in current.co_consts if hasattr(c, "co_names"))
    found = getattr(hook, "__globals__", {})
    # ``obs.gunicorn.child_exit(...)``, ``fold_dead_worker(...)``, or an alias of obs's hook
    return bool(referenced & names) or any(found.get(name) is own for name in referenced)


def warn_about_replaced_hooks(server: Any) -> None:
    """Log one warning line, once, when the configuration replaced obs's hooks without calling
    them: gunicorn keeps only the last definition of a hook, silently."""
    global _checked
    if _checked:
        return
    _checked = True
    names = replaced_hooks(server.cfg)
    if not names:
        return
    losses = "; ".join(_HOOKS[name][0] for name in names)
    calls = ", ".join(f"obs.gunicorn.{name}(server, worker)" for name in names)
    server.log.warning(
        "the gunicorn configuration replaces obs.gunicorn's %s without calling them (%s); "
        "call %s from yours (docs/multiprocess.md)",
        ", ".join(names),
        losses,
        calls,
    )
