"""The benchmark harness runs end to end and produces obs's figures (no timing thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_quick_run_produces_the_obs_figures(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmarks\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-install",
         "--sections", "asgi,logging,exposition,memory", "--pythons", "",
         "--results-dir", str(tmp_path / "results"), "--readme", str(readme)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "results" / "latest.json").read_text())
    sections = result["sections"]
    assert not [name for name, s in sections.items() if "error" in s]

    for routes in ("1", "50"):
        table = sections["asgi"]["routes"][routes]
        for name in ("starlette (bare)", "obs metrics-only", "obs default"):
            assert table[name]["us_per_request"]["median"] > 0
        assert "overhead_us" in table["obs default"]
    assert sections["logging"]["loggers"]["obs"]["lines_per_second"]["median"] > 0
    for mode in ("single_process", "multiprocess"):
        block = sections["exposition"][mode]
        for renderer in ("obs", "prometheus_client"):
            for fmt in ("text", "openmetrics"):
                assert block["ms"][f"{renderer} {fmt}"]["median"] > 0
        assert all(block["same_samples"].values())
        assert set(block["same_samples"]) == {"text", "openmetrics"}
    assert sections["exposition"]["multiprocess"]["exemplars"] > 0  # the side files were read
    memory = sections["memory"]
    assert memory["rss_mb_after_warmup"] > 0
    assert memory["rss_mb_after"] > 0

    targets = {t["target"]: t for t in result["targets"]}
    assert targets["ASGI obs default overhead"]["measured"] is not None
    text = readme.read_text()
    assert "old" not in text
    assert "| Target | Measured | Goal | Met |" in text
    assert text.count("<!-- bench:start -->") == 1
    assert "| Target |" in proc.stdout


def test_profiling_bench_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_profiling", "--rounds", "1", "--seconds", "1",
         "--number", "1000"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    sampled = rows["served app, req/s while sampled at 100 Hz"]
    assert int(sampled.split("samples per round")[0].split()[-1]) > 0
    assert "throughput cost of sampling (median of pairs)" in rows
    profiler_cpu = rows["CPU of obs profile and py-spy while sampling"].split(" %")[0].split()[-1]
    assert float(profiler_cpu) > 0, rows  # py-spy's processes were found and measured
    assert "obs profile options: defaults" in proc.stdout


def test_the_confidence_interval_brackets_the_median() -> None:
    from bench.common import median_ci

    values = [float(v) for v in range(41)]
    median, low, high = median_ci(values)
    assert median == 20.0
    assert 12.0 <= low < 20.0 < high <= 28.0
    assert median_ci([5.0]) == (5.0, 5.0, 5.0)
    assert median_ci([3.0, 1.0, 2.0, 5.0, 4.0]) == (3.0, 1.0, 5.0)  # five rounds: min..max


def test_instruction_counts_are_measured() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--requests", "50", "--quick", "--variants", "flask (bare)"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("WSGI (Flask): instructions per request (50 requests")
    (row,) = [line for line in proc.stdout.splitlines() if "flask (bare)" in line]
    # A Flask request executes hundreds of thousands of instructions; start-up is excluded.
    assert 50_000 < int(row.split()[-1].replace(",", "")) < 5_000_000, proc.stdout
    assert "ASGI" not in proc.stdout
