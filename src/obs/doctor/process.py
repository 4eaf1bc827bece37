"""Checks of the service's process (``--pid``), read from ``/proc``: its command line, its
environment at start, its stdout, its workers and the files they map."""

from __future__ import annotations

import ast
import os
import re
import stat
from dataclasses import dataclass, field

from obs.doctor.findings import Finding, fail, ok, warn
from obs.exceptions import ConfigError
from obs.profiling.tree import children

_SERVERS = ("gunicorn", "uvicorn", "hypercorn")


@dataclass
class ProcessInfo:
    """What ``/proc`` tells about a service process and its workers."""

    pid: int
    argv: list[str] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    workers: list[int] = field(default_factory=list)
    start_time: float = 0.0

    @classmethod
    def read(cls, pid: int) -> ProcessInfo:
        info = cls(pid)
        info.argv = _read(f"/proc/{pid}/cmdline").split("\0")[:-1]
        for item in _read(f"/proc/{pid}/environ").split("\0"):
            key, sep, value = item.partition("=")
            if sep:
                info.environ[key] = value
        try:
            info.stdout = os.readlink(f"/proc/{pid}/fd/1")
        except OSError:
            info.stdout = ""
        info.workers = [c for c in children(pid) if "python" in _exe(c) or _exe(c) == _exe(pid)]
        info.start_time = start_time(pid)
        return info

    @property
    def server(self) -> str:
        """``gunicorn``, ``uvicorn``, ``hypercorn`` or ``""``."""
        words = " ".join(os.path.basename(a) for a in self.argv[:3])
        return next((s for s in _SERVERS if s in words), "")

    def option(self, *names: str) -> str | None:
        """The value of a command-line option (``--workers 4`` or ``--workers=4``)."""
        args = self.argv + self.environ.get("GUNICORN_CMD_ARGS", "").split()
        for i, arg in enumerate(args):
            for name in names:
                if arg == name and i + 1 < len(args):
                    return args[i + 1]
                if arg.startswith(name + "="):
                    return arg.split("=", 1)[1]
                short = name.startswith("-") and not name.startswith("--")
                if short and arg.startswith(name) and len(arg) > len(name):
                    return arg[len(name) :]
        return None

    def flag(self, name: str) -> bool:
        return name in self.argv or name in self.environ.get("GUNICORN_CMD_ARGS", "").split()


def _read(path: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def check_pid(pid: int) -> int:
    """*pid* if it names a running Python process; else a ``ConfigError`` saying what to pass.

    Its executable says, or a libpython it maps (uWSGI); where the executable cannot be read
    (another user's process), its command line must name Python or a Python server, and the
    ptrace check then says how to reach it."""
    if not os.path.isdir(f"/proc/{pid}"):
        raise ConfigError(f"--pid {pid}: no such process; pass the service's pid (ps -ef)")
    name = _read(f"/proc/{pid}/comm").strip()
    what = "pass the service's own pid, the master's (pgrep -of 'gunicorn|uvicorn|hypercorn')"
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        argv = _read(f"/proc/{pid}/cmdline").split("\0")
        words = " ".join([name, *(os.path.basename(arg) for arg in argv[:2])])
        if "python" in words or any(server in words for server in _SERVERS):
            return pid
        raise ConfigError(
            f"--pid {pid} ({name}) does not look like a Python process and its executable "
            f"cannot be read; {what}, and run obs doctor as its user or root"
        ) from None
    if "python" in os.path.basename(exe) or "libpython" in _read(f"/proc/{pid}/maps"):
        return pid
    raise ConfigError(f"--pid {pid} ({name or exe}) is not a Python process; {what}")


def start_time(pid: int) -> float:
    """When *pid* started, in seconds since the epoch (0 if unknown)."""
    stat_line = _read(f"/proc/{pid}/stat")
    boot = re.search(r"^btime (\d+)", _read("/proc/stat"), re.M)
    if not stat_line or boot is None:
        return 0.0
    ticks = int(stat_line.rpartition(")")[2].split()[19])
    return int(boot[1]) + ticks / os.sysconf("SC_CLK_TCK")


def log_format(info: ProcessInfo) -> str:
    """The format obs picks in that process: ``OBS_LOG_FORMAT``, or ``auto`` by its stdout."""
    chosen = info.environ.get("OBS_LOG_FORMAT", "auto").strip().lower()
    terminal = info.stdout.startswith(("/dev/pts/", "/dev/tty"))
    if chosen != "auto":
        return f"{chosen} (OBS_LOG_FORMAT)"
    return f"{'console' if terminal else 'json'} (auto: stdout is {'a terminal' if terminal else 'not a terminal'})"


def check_access_loggers(info: ProcessInfo) -> Finding:
    """A server writing its own access line beside obs's doubles every request in the logs."""
    name = "one access log"
    obs_on = info.environ.get("OBS_ACCESS_LOG", "true").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )
    server = info.server
    if not server:
        return ok(name, "no uvicorn, gunicorn or hypercorn in the command line")
    if server == "uvicorn":
        level = (info.option("--log-level") or "info").lower()
        second = not info.flag("--no-access-log") and level in ("trace", "debug", "info")
        fix = "add --no-access-log to uvicorn"
    else:  # gunicorn and hypercorn write access lines only when given a file for them
        second = info.option("--access-logfile") is not None or (
            server == "hypercorn" and info.option("--access-log") is not None
        )
        fix = f"drop --access-logfile from {server}"
    if second and obs_on:
        return warn(
            name,
            f"{server} writes an access line beside obs's for every request",
            fix + " (or set OBS_ACCESS_LOG=false to keep only the server's)",
        )
    if second:
        return ok(name, f"{server}'s (obs's is off: OBS_ACCESS_LOG=false)")
    return ok(
        name,
        f"obs's only ({server}'s is off)"
        if obs_on
        else "none: OBS_ACCESS_LOG=false and the server's is off",
    )


def worker_count(info: ProcessInfo) -> int:
    declared = info.option("--workers", "-w")
    if declared is not None and declared.isdigit():
        return int(declared)
    return max(len(info.workers), 1)


def metrics_directory(info: ProcessInfo) -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` as the workers use it: from the files they map, else
    their environment (variables set after start are not in ``/proc/<pid>/environ``)."""
    for pid in [*info.workers, info.pid]:
        for line in _read(f"/proc/{pid}/maps").splitlines():
            path = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
            if path.endswith(".db") and re.search(r"_\d+\.db$", path):
                return os.path.dirname(path)
    for pid in [*info.workers, info.pid]:
        value = (
            ProcessInfo.read(pid).environ.get("PROMETHEUS_MULTIPROC_DIR")
            if pid != info.pid
            else info.environ.get("PROMETHEUS_MULTIPROC_DIR")
        )
        if value:
            return value
    return None


def check_multiprocess(info: ProcessInfo) -> list[Finding]:
    """Several workers need one shared, private, fresh directory and a child-exit hook."""
    name = "multiprocess"
    workers = worker_count(info)
    if workers < 2:
        return [ok(name, "one worker: no shared directory needed")]
    directory = metrics_directory(info)
    if not directory:
        return [
            fail(
                name,
                f"{workers} workers but no PROMETHEUS_MULTIPROC_DIR: each scrape shows one "
                "worker's numbers",
                "gunicorn -c python:obs.gunicorn, or export PROMETHEUS_MULTIPROC_DIR to an empty "
                "private directory before the server starts",
            )
        ]
    findings = [ok(name, f"{workers} workers share {directory}")]
    try:
        mode = os.stat(directory)
    except OSError as exc:
        return [fail(name, f"{directory}: {exc.strerror}", "create it before the server starts")]
    uid = _uid(info.pid)
    if mode.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (uid is not None and mode.st_uid != uid):
        findings.append(
            fail(
                "multiprocess directory private",
                f"{directory} is writable by others or owned by another user",
                f"chmod 700 {directory} and let the service's user own it",
            )
        )
    else:
        findings.append(
            ok("multiprocess directory private", "owned by the service, not writable by others")
        )
    stale = _stale_files(directory, info.start_time)
    if stale:
        findings.append(
            fail(
                "multiprocess directory emptied",
                f"{len(stale)} file(s) older than the server ({stale[0]}): an earlier run's "
                "values are added to this one's",
                "empty the directory before the server starts (obs.gunicorn's on_starting does)",
            )
        )
    else:
        findings.append(ok("multiprocess directory emptied", "no file older than the server"))
    config = _config_file(info) if info.server == "gunicorn" else None
    folds = config is not None and _config_folds(config)
    if info.server == "gunicorn" and (
        "obs.gunicorn" in " ".join(info.argv)
        or info.option("-c", "--config") == "python:obs.gunicorn"
    ):
        findings.append(ok("child-exit hook", "obs.gunicorn folds each dead worker's files"))
    elif config is not None and folds:
        findings.append(
            ok("child-exit hook", f"{config} keeps obs.gunicorn's child_exit (or calls it)")
        )
    elif config is not None and _config_replaces_child_exit(config):
        findings.append(
            warn(
                "child-exit hook",
                f"{config} replaces obs.gunicorn's child_exit without calling it: dead workers' "
                "files pile up and their gauges stay",
                "call obs.gunicorn.child_exit(server, worker) from your child_exit",
            )
        )
    else:
        findings.append(
            warn(
                "child-exit hook",
                "nothing folds a dead worker's files: they pile up and its gauges stay",
                "gunicorn -c python:obs.gunicorn, or call obs.multiprocess.fold_dead_worker(pid) "
                "from the server's child-exit hook",
            )
        )
    return findings


def _config_file(info: ProcessInfo) -> str | None:
    """gunicorn's configuration file (``-c``, else ``gunicorn.conf.py`` in its directory)."""
    config = info.option("-c", "--config") or "gunicorn.conf.py"
    if config.startswith("python:"):
        return None
    try:
        path = os.path.join(os.readlink(f"/proc/{info.pid}/cwd"), config)
    except OSError:
        path = config
    return path if os.path.isfile(path) else None


# obs's names a configuration file calls to fold a dead worker.
_FOLDING_NAMES = frozenset({"child_exit", "fold_dead_worker"})
_OBS_MODULES = frozenset({"obs.gunicorn", "obs.multiprocess", "obs.prometheus.multiprocess"})


def _parse(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as source:
            return ast.parse(source.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None


def _config_folds(path: str) -> bool:
    """Whether the configuration file keeps obs's ``child_exit`` (``from obs.gunicorn import
    *`` and no ``child_exit`` of its own after it) or defines one that calls obs's."""
    tree = _parse(path)
    if tree is None:
        return False
    folding = set(_FOLDING_NAMES)
    kept = False
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in _OBS_MODULES:
            for alias in node.names:
                if alias.name == "*" and node.module == "obs.gunicorn":
                    kept = True
                elif alias.name in _FOLDING_NAMES:
                    folding.add(alias.asname or alias.name)
                    kept = kept or (alias.asname or alias.name) == "child_exit"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "child_exit":
            kept = any(
                (isinstance(n, ast.Name) and n.id in folding)
                or (isinstance(n, ast.Attribute) and n.attr in _FOLDING_NAMES)
                for statement in node.body
                for n in ast.walk(statement)
            )
    return kept


def _config_replaces_child_exit(path: str) -> bool:
    tree = _parse(path)
    return tree is not None and any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "child_exit"
        for node in tree.body
    )


def _uid(pid: int) -> int | None:
    found = re.search(r"^Uid:\s+(\d+)", _read(f"/proc/{pid}/status"), re.M)
    return int(found[1]) if found else None


def _stale_files(directory: str, started: float) -> list[str]:
    if not started:
        return []
    stale = []
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        try:
            if os.stat(path).st_mtime < started - 1.0:
                stale.append(entry)
        except OSError:
            continue
    return stale
