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
    assert commands == {"config", "dashboards", "demo", "dump", "profile"}


def test_python_dash_m_obs_is_the_command() -> None:
    from tests.conftest import run_python

    proc = run_python(
        "import runpy, sys; sys.argv = ['obs', '--version']; runpy.run_module('obs', run_name='__main__')"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("obs, version ")
