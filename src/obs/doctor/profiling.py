"""Can ``obs profile`` attach to the process (``--pid``)? py-spy, the Python version it
supports, Yama's ``ptrace_scope``, ``CAP_SYS_PTRACE`` and the user, each with its fix."""

from __future__ import annotations

import os
import re
import subprocess

from obs.doctor.findings import Finding, fail, ok, warn
from obs.exceptions import ProfilingError
from obs.profiling.pyspy import find_py_spy, ptrace_scope

#: The newest Python each py-spy release line reads (from py-spy's changelog).
PY_SPY_SUPPORT: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((0, 4), (3, 13)),
    ((0, 3), (3, 11)),
)
CAP_SYS_PTRACE = 19


def _version(text: str) -> tuple[int, int] | None:
    found = re.search(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


def target_python(pid: int) -> tuple[int, int] | None:
    """The target's Python version, from its executable or the libpython it maps."""
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        if (found := re.fullmatch(r"python(\d+)\.(\d+)", exe)) is not None:
            return int(found[1]), int(found[2])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                if (found := re.search(r"libpython(\d+)\.(\d+)", line)) is not None:
                    return int(found[1]), int(found[2])
    except OSError:
        pass
    return None


def check_py_spy(pid: int) -> Finding:
    name = "py-spy"
    try:
        binary = find_py_spy()
    except ProfilingError as exc:
        return fail(name, "not installed", str(exc).split("; ", 1)[-1])
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    version = _version(out.stdout)
    python = target_python(pid)
    if version is None or python is None:
        return warn(
            name,
            f"{out.stdout.strip() or binary}; target's Python unknown",
            "check the pid is a Python process",
        )
    newest = next((py for spy, py in PY_SPY_SUPPORT if version >= spy), (3, 10))
    shown = f"py-spy {'.'.join(map(str, version))}, target Python {'.'.join(map(str, python))}"
    if python > newest:
        return fail(name, f"{shown}: too new for this py-spy", "pip install -U py-spy")
    return ok(name, shown)


def effective_capabilities(pid: int | str = "self") -> int:
    """The effective capability bits of *pid* (``CapEff`` in its status)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def ptrace_verdict(scope: int | None, has_cap: bool, same_user: bool) -> tuple[bool, str, str]:
    """Whether py-spy may attach to a process that is not its child: (possible, why, fix)."""
    if not same_user and not has_cap:
        return (
            False,
            "the target runs as another user",
            "run obs profile as that user or as root (sudo)",
        )
    if scope is None or scope == 0:
        return True, "ptrace allowed" + (" (no Yama)" if scope is None else " (ptrace_scope 0)"), ""
    if scope == 3:
        return (
            False,
            "ptrace_scope 3: ptrace disabled until reboot",
            "boot with kernel.yama.ptrace_scope=1 or lower",
        )
    if has_cap:
        return True, f"ptrace_scope {scope}, CAP_SYS_PTRACE held", ""
    return (
        False,
        f"ptrace_scope {scope} and no CAP_SYS_PTRACE: only a parent may attach",
        "run as root, add the capability (docker run --cap-add SYS_PTRACE), or "
        "sysctl kernel.yama.ptrace_scope=0",
    )


def check_ptrace(pid: int) -> Finding:
    scope = ptrace_scope()
    has_cap = bool(effective_capabilities() >> CAP_SYS_PTRACE & 1)
    try:
        same_user = os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return fail("ptrace", f"no process {pid}", "pass the pid of the service (ps -ef)")
    possible, why, fix = ptrace_verdict(scope, has_cap, same_user)
    return ok("ptrace", why) if possible else fail("ptrace", why, fix)
