"""``python -m bench``: install the peers, run every section, write the results and the README.

    python -m bench                     everything (under 20 minutes on 2 cores)
    python -m bench --quick             a smoke run of the harness (a few minutes)
    python -m bench --sections asgi,logging --no-install --pythons ''

Without ``--no-install`` it builds ``bench/.venv`` (obs editable, the pinned peers of
``bench/requirements-peers.txt``), installs Debian's ``wrk`` when root and missing, and
re-runs itself there; likewise bench/.venv-3.12 and bench/.venv-3.13 from the Pythons it finds
(``pythonX.Y`` on PATH or pyenv's), where the instructions, asgi and wsgi sections run again so
that a regression on a newer Python shows. Each section runs in a fresh interpreter so that global registries and
logging set-ups of one cannot affect another.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".venv"
REQUIREMENTS = ROOT / "bench" / "requirements-peers.txt"

SECTIONS = {
    "instructions": "bench.instructions",
    "asgi": "bench.asgi_inprocess",
    "wsgi": "bench.wsgi_inprocess",
    "http": "bench.http_load",
    "logging": "bench.logging_throughput",
    "exposition": "bench.exposition",
    "memory": "bench.memory",
}
#: The sections also run on every other Python of --pythons, so a regression on one shows.
PER_PYTHON = ("instructions", "asgi", "wsgi")
PYTHONS = ("3.11", "3.12", "3.13")


def _venv(version: str) -> Path:
    """bench/.venv for the Python that runs ``python -m bench``, bench/.venv-X.Y for others."""
    current = "{}.{}".format(*sys.version_info[:2])
    return VENV if version == current else ROOT / "bench" / f".venv-{version}"


def find_python(version: str) -> str | None:
    """An interpreter of *version*: ``pythonX.Y`` on PATH, else pyenv's newest X.Y.*."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == str(
            tuple(map(int, version.split(".")))
        ):
            return candidate
    return None


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _install(sections: list[str], venv: Path = VENV, interpreter: str = sys.executable) -> Path:
    """Build or refresh *venv* (bench/.venv by default) with *interpreter*; return its python."""
    python = venv / "bin" / "python"
    digest = hashlib.sha256(
        REQUIREMENTS.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    stamp = venv / ".bench-installed"
    if not python.exists():
        say(f"creating {venv.relative_to(ROOT)}")
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    if not stamp.exists() or stamp.read_text() != digest:
        say("installing obs (editable) and the pinned peers")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), "-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(digest)
    if "http" in sections and shutil.which("wrk") is None:
        if os.geteuid() == 0:
            say("installing Debian's wrk")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            ok = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env,
                                capture_output=True, check=False).returncode == 0  # fmt: skip
            if not ok:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
                subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env,
                               capture_output=True, check=False)  # fmt: skip
        if shutil.which("wrk") is None:
            say("wrk is not installed (sudo apt-get install -y wrk); using the Python generator")
    return python


def _timeout(name: str, quick: bool) -> float:
    """Generous: a section that times out reports nothing, and the VM is shared."""
    if name == "instructions":  # every variant under valgrind, three interpreters
        return 900 if quick else 1800
    return 300 if quick else 900


def _run_section(
    name: str, quick: bool, timeout: float, python: str = sys.executable
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    command = [python, "-m", SECTIONS[name], "--out", str(out)]
    if quick:
        command.append("--quick")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    start = time.monotonic()
    try:
        proc = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            say(f"section {name} failed:\n{proc.stderr}")
            return {"error": tail[0]}
        result: dict[str, Any] = json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        out.unlink(missing_ok=True)
    result["section_seconds"] = round(time.monotonic() - start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: checks the harness")
    parser.add_argument("--no-install", action="store_true",
                        help="run in this interpreter; peers that are missing are skipped")  # fmt: skip
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, from {','.join(SECTIONS)}")  # fmt: skip
    parser.add_argument("--pythons", default=",".join(PYTHONS),
                        help=f"also run {','.join(PER_PYTHON)} on these Pythons ('' for none)")  # fmt: skip
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"Error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    current = "{}.{}".format(*sys.version_info[:2])
    others = [v.strip() for v in args.pythons.split(",") if v.strip() and v.strip() != current]
    if not args.no_install:
        python = _install(sections)
        for version in others if set(sections) & set(PER_PYTHON) else ():
            interpreter = find_python(version)
            if interpreter is None:
                say(f"Python {version} not found (pyenv install {version}); its rows are skipped")
            else:
                _install(sections, _venv(version), interpreter)
        command = [
            str(python),
            "-m",
            "bench",
            "--no-install",
            *(argv if argv is not None else sys.argv[1:]),
        ]
        return subprocess.run(command, cwd=ROOT, check=False).returncode

    started = time.monotonic()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "machine": report.machine(),
        "sections": {},
    }
    for name in sections:
        say(f"running {name}{' (quick)' if args.quick else ''}")
        result["sections"][name] = _run_section(name, args.quick, _timeout(name, args.quick))
        say(f"{name} done in {result['sections'][name].get('section_seconds', '?')} s")
    result["by_python"] = {
        current: {k: v for k, v in result["sections"].items() if k in PER_PYTHON}
    }
    for version in others:
        python = _venv(version) / "bin" / "python"
        for name in (n for n in sections if n in PER_PYTHON):
            if not python.exists():
                result["by_python"].setdefault(version, {})[name] = {
                    "error": f"{python.relative_to(ROOT)} missing (run without --no-install)"
                }
                continue
            say(f"running {name} on Python {version}{' (quick)' if args.quick else ''}")
            section = _run_section(name, args.quick, _timeout(name, args.quick), str(python))
            result["by_python"].setdefault(version, {})[name] = section
            say(f"{name} on Python {version} done in {section.get('section_seconds', '?')} s")
    result["targets"] = report.targets(result["sections"])
    result["total_seconds"] = round(time.monotonic() - started, 1)
    path = report.write(result, args.results_dir, None if args.no_readme else args.readme)
    print(report.markdown(result))
    say(f"results: {path} (and latest.json); total {result['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
