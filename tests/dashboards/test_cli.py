from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from obs.cli import cli
from obs.dashboards import render_files


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"OBS_SERVICE_NAME": None})


def test_generate_writes_every_file_then_reports_up_to_date(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "dashboards"
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name, text in render_files().items():
        assert (out / name).read_text() == text
        assert f"wrote {out / name}" in result.output
    again = runner.invoke(cli, ["dashboards", "generate", "--out", str(out)])
    assert again.output == f"{out}: up to date\n"


def test_check_fails_with_a_one_line_error_on_stale_files(
    runner: CliRunner, tmp_path: Path
) -> None:
    runner.invoke(cli, ["dashboards", "generate", "--out", str(tmp_path)])
    (tmp_path / "runtime.json").write_text("{}\n")
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: generated files are out of date: ")
    assert "runtime.json" in result.output and "run: obs dashboards generate" in result.output
    assert (tmp_path / "runtime.json").read_text() == "{}\n"


def test_options_change_the_output(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["dashboards", "generate", "--out", str(tmp_path), "--service-name", "shop",
         "--loki-uid", "logs-eu", "--pyroscope-uid", "pyro", "--metric-prefix", "app_"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "app_http_server_request_duration_seconds_bucket"
        in (tmp_path / "http-overview.json").read_text()
    )
    assert '"value": "shop"' in (tmp_path / "logs.json").read_text()
    assert "uid: pyro" in (tmp_path / "provisioning/datasources/obs.yml").read_text()


def test_invalid_option_is_a_config_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["dashboards", "generate", "--out", str(tmp_path), "--loki-uid", "no spaces"]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: loki_uid='no spaces' is not a Grafana data source uid")


def test_format_and_slo_options(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["dashboards", "generate", "--out", str(tmp_path), "--format", "v2", "--slo-availability", "99.5",
         "--slo-latency", "250ms@99.9", "--grafana-url", "https://grafana.example.org"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"apiVersion": "dashboard.grafana.app/v2"' in (tmp_path / "logs.json").read_text()
    alerts = (tmp_path / "alerts.yml").read_text()
    assert 'le="0.25"' in alerts and "(14.4 * 0.005)" in alerts and "(6 * 0.001)" in alerts
    assert "https://grafana.example.org/d/obs-http?viewPanel=101" in alerts
    check = runner.invoke(
        cli,
        ["dashboards", "generate", "--out", str(tmp_path), "--format", "v2", "--check", "--slo-availability",
         "99.5", "--slo-latency", "250ms@99.9", "--grafana-url", "https://grafana.example.org"],
    )  # fmt: skip
    assert check.exit_code == 0, check.output


def test_a_latency_threshold_between_buckets_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["dashboards", "generate", "--out", str(tmp_path), "--slo-latency", "0.3s@99"]
    )
    assert result.exit_code == 2
    assert "0.3s is not a bucket boundary" in result.output and "0.25s, 0.5s" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--slo-availability", "50"], "--slo-availability '50'"),
        (["--slo-availability", "99.99999999999"], "--slo-availability '99.99999999999'"),
        (["--slo-latency", "0.5s@100"], "--slo-latency '0.5s@100'"),
        (["--slo-latency", "0.5s@0.99"], "--slo-latency '0.5s@0.99'"),
        (["--min-requests", "-1"], "--min-requests -1"),
    ],
)
def test_slo_options_are_range_checked_in_their_own_unit(
    runner: CliRunner, tmp_path: Path, args: list[str], flag: str
) -> None:
    result = runner.invoke(cli, ["dashboards", "generate", "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {flag} is invalid") and result.output.count("\n") == 1
    assert "between 0 and 1" not in result.output
    assert not list(tmp_path.iterdir())


def test_check_suggests_the_command_with_the_options_given(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "g 1"
    runner.invoke(cli, ["dashboards", "generate", "--out", str(out)])
    result = runner.invoke(
        cli,
        ["dashboards", "generate", "--out", str(out), "--check", "--service-name", "other",
         "--slo-latency", "250ms@99.9", "--format", "v2"],
    )  # fmt: skip
    assert result.exit_code == 1
    suggested = result.output.strip().split("; run: ", 1)[1]
    assert shlex.split(suggested) == [
        "obs", "dashboards", "generate", "--out", str(out), "--service-name", "other",
        "--slo-latency", "250ms@99.9", "--format", "v2",
    ]  # fmt: skip
    again = runner.invoke(cli, shlex.split(suggested)[1:])
    assert again.exit_code == 0, again.output
    check = runner.invoke(cli, [*shlex.split(suggested)[1:], "--check"])
    assert check.exit_code == 0, check.output
