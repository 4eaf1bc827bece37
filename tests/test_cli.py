from __future__ import annotations

import pytest
from click.testing import CliRunner

from obs.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_config_lists_variables(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["config"], env={"OBS_SERVICE_NAME": "shop", "OBS_PROFILE_TOKEN": "t0p-s3cret-0123456"}
    )
    assert result.exit_code == 0
    assert "OBS_SERVICE_NAME=shop" in result.output
    assert "OBS_PROFILE_TOKEN=(set)" in result.output and "t0p-s3cret" not in result.output


def test_config_prints_values_as_written_in_the_environment(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["config"], env={"OBS_ACCESS_LOG": "off", "OBS_PROFILE_TOKEN": None}
    )
    lines = result.output.splitlines()
    assert "OBS_ACCESS_LOG=false" in lines and "OBS_METRICS_EXCLUDE_PATHS=/metrics" in lines
    assert (
        "OBS_DURATION_BUCKETS=0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1,2.5,5,7.5,10" in lines
    )
    assert "# OBS_PROFILE_TOKEN unset" in result.output
    assert not any(word in result.output for word in ("True", "False", "None"))


def test_invalid_environment_is_one_line_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config"], env={"OBS_LOG_FORMAT": "xml"})
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: OBS_LOG_FORMAT='xml' is invalid; use one of: json, console, auto."
    )


def test_every_command_is_registered(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = {
        line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()
    }
    assert commands == {"config", "dashboards", "demo", "doctor", "dump", "profile", "profiles"}


def test_python_dash_m_obs_is_the_command() -> None:
    from tests.conftest import run_python

    proc = run_python(
        "import runpy, sys; sys.argv = ['obs', '--version']; runpy.run_module('obs', run_name='__main__')"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("obs, version ")
