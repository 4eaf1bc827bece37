"""``obs dashboards build``: grafana-dashboards-builder's folder rules, but broken files stop it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from obs.cli import cli
from obs.dashboards.build import DashboardBuildError, build, derived_uid

SDK_SOURCE = """\
from grafana_foundation_sdk.builders import dashboard as db
from obs.dashboards import DashboardOptions, panels

options = DashboardOptions(service_name="shop")
dashboard = (
    db.Dashboard({title!r})
    .uid({uid!r})
    .variables(panels.target_variables(options))
    .with_row(db.Row("Traffic"))
    .with_panel(panels.request_rate(options))
    .with_panel(panels.latency_percentiles(options))
)
"""
DICT_SOURCE = (
    'dashboard = {{"title": {title!r}, "uid": {uid!r}, "panels": [], "schemaVersion": 42}}\n'
)


def write(root: Path, relative: str, title: str, *, sdk: bool = False) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    source = SDK_SOURCE if sdk else DICT_SOURCE
    path.write_text(source.format(title=title, uid=title.lower().replace(" ", "-")))


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_folders_follow_the_first_path_component(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "main.dashboard.py", "Main")
    write(src, "kubernetes/workloads/pods.dashboard.py", "Pods", sdk=True)
    write(src, "kubernetes/nodes/nodes.dashboard.py", "Nodes")
    write(src, "nginx/health.dashboard.py", "Nginx health")
    write(src, "General/other.dashboard.py", "Other")
    (src / "nginx" / "helper.py").write_text("raise RuntimeError('not a dashboard source')\n")
    build(src, out)
    assert tree(out) == {
        "General/Main.json",
        "General/Other.json",
        "kubernetes/Pods.json",
        "kubernetes/Nodes.json",
        "nginx/Nginx health.json",
        "provisioning/dashboards/obs-build.yml",
    }
    pods = json.loads((out / "kubernetes" / "Pods.json").read_text())
    ids = [p["id"] for p in pods["panels"]]
    assert len(ids) == len(set(ids)) == 3 and 0 not in ids
    assert pods["schemaVersion"] == 42


def test_from_configmap_takes_the_folder_from_the_name(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "main.dashboard.py", "Main")
    write(src, "kubernetes--pods.dashboard.py", "Pods")
    write(src, "nginx--nginx--health.dashboard.py", "Health")
    build(src, out, from_configmap=True)
    assert tree(out) - {"provisioning/dashboards/obs-build.yml"} == {
        "General/Main.json", "kubernetes/Pods.json", "nginx/Health.json",
    }  # fmt: skip
    build(src, out)  # without the flag the prefix is just part of a root file's name
    assert tree(out) - {"provisioning/dashboards/obs-build.yml"} == {
        "General/Main.json", "General/Pods.json", "General/Health.json",
    }  # fmt: skip


def test_provisioning_covers_every_folder(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "main.dashboard.py", "Main")
    write(src, "team-a/x.dashboard.py", "X")
    build(src, out, grafana_path="/dash/")
    providers = yaml.safe_load((out / "provisioning/dashboards/obs-build.yml").read_text())[
        "providers"
    ]
    assert {(p["folder"], p["options"]["path"]) for p in providers} == {
        ("", "/dash/General"), ("team-a", "/dash/team-a"),
    }  # fmt: skip


def test_output_is_emptied_first(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "main.dashboard.py", "Main")
    (out / "old").mkdir(parents=True)
    (out / "old" / "Gone.json").write_text("{}")
    build(src, out)
    assert "old/Gone.json" not in tree(out)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("I am not python", "SyntaxError"),
        ("import grafana_foundation_sdk\n", "defines no `dashboard`"),
        ("raise KeyError('datasource')\n", "KeyError: 'datasource' (line 1)"),
        ("dashboard = 42\n", "`dashboard` is a int"),
        ("", "defines no `dashboard`"),
    ],
)
def test_a_broken_file_stops_the_build_with_its_path(
    tmp_path: Path, source: str, message: str
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "good.dashboard.py", "Good")
    (src / "team").mkdir()
    (src / "team" / "broken.dashboard.py").write_text(source)
    (out / "kept").mkdir(parents=True)
    with pytest.raises(DashboardBuildError) as raised:
        build(src, out)
    assert str(raised.value).startswith(f"{src / 'team' / 'broken.dashboard.py'}: ")
    assert message in str(raised.value)
    assert (out / "kept").is_dir()  # nothing was deleted


def test_same_title_in_one_folder_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write(src, "a/one.dashboard.py", "Same")
    write(src, "a/b/two.dashboard.py", "Same")
    with pytest.raises(DashboardBuildError, match=r"both build a/Same\.json"):
        build(src, tmp_path / "out")


def test_input_and_output_must_differ(tmp_path: Path) -> None:
    write(tmp_path, "main.dashboard.py", "Main")
    with pytest.raises(DashboardBuildError, match="can't be the same"):
        build(tmp_path, tmp_path / ".")
    with pytest.raises(DashboardBuildError, match="contains SRC_DIR"):
        build(tmp_path, tmp_path.parent)
    assert (tmp_path / "main.dashboard.py").exists()


def test_cli_builds_v2_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "team/x.dashboard.py", "X", sdk=True)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["dashboards", "build", str(src), "--out", str(out), "--format", "v2"]
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads((out / "team" / "X.json").read_text())["apiVersion"]
        == "dashboard.grafana.app/v2"
    )
    (src / "team" / "y.dashboard.py").write_text("dashboard = None\n")
    failed = runner.invoke(cli, ["dashboards", "build", str(src), "--out", str(out)])
    assert failed.exit_code == 1
    assert failed.output.startswith(
        f"Error: {src / 'team' / 'y.dashboard.py'}: `dashboard` is a NoneType"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = runner.invoke(cli, ["dashboards", "build", str(empty), "--out", str(out)])
    assert nothing.exit_code == 0 and "There are no dashboards to build" in nothing.output
    assert (out / "team" / "X.json").exists()


NO_UID_SOURCES = {
    "team/dict.dashboard.py": 'dashboard = {"title": "Orders API", "panels": []}\n',
    "team/sdk.dashboard.py": (
        "from grafana_foundation_sdk.builders import dashboard as db\n"
        'dashboard = db.Dashboard("Checkout / Payments")\n'
    ),
}


@pytest.mark.parametrize("fmt", ["classic", "v2", "v2beta1"])
def test_a_missing_uid_is_derived_from_the_title(tmp_path: Path, fmt: str) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for relative, source in NO_UID_SOURCES.items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        (src / relative).write_text(source)
    build(src, out, fmt=fmt)
    uids = []
    for name in ("Orders API", "Checkout - Payments"):
        data = json.loads((out / "team" / f"{name}.json").read_text())
        uids.append(data["uid"] if fmt == "classic" else data["metadata"]["name"])
    assert uids == ["orders-api", "checkout-payments"]


def test_derived_uids_fit_grafana() -> None:
    assert derived_uid("x" * 300) == derived_uid("x" * 300)
    assert len(derived_uid("x" * 300)) <= 40 and derived_uid("x" * 300) != derived_uid("x" * 301)
    assert len(derived_uid("日本語")) == 8  # no letter survives: the hash alone


def test_an_invalid_uid_is_reported_with_its_file(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dashboard.py").write_text('dashboard = {"title": "A", "uid": "' + "u" * 41 + '"}\n')
    with pytest.raises(DashboardBuildError, match=r"a\.dashboard\.py: uid 'u+' is not a Grafana"):
        build(src, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["v2", "v2beta1"])
def test_a_dashboard_v2_cannot_convert_leaves_out_untouched(tmp_path: Path, fmt: str) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "good.dashboard.py", "Good")
    (src / "bad.dashboard.py").write_text(
        'dashboard = {"title": "Bad", "uid": "bad", "templating": {"list": [{}]}}\n'
    )
    (out / "kept").mkdir(parents=True)
    result = CliRunner().invoke(
        cli, ["dashboards", "build", str(src), "--out", str(out), "--format", fmt]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {src / 'bad.dashboard.py'}: cannot convert")
    assert result.output.count("\n") == 1
    assert (out / "kept").is_dir() and tree(out) == set()


def test_a_title_too_long_for_a_file_name_stops_the_build_before_out_is_touched(
    tmp_path: Path,
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "good.dashboard.py", "Good")
    (src / "long.dashboard.py").write_text(
        'dashboard = {"title": "' + "t" * 300 + '", "uid": "long"}\n'
    )
    (out / "kept").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["dashboards", "build", str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {src / 'long.dashboard.py'}: the title makes a file")
    assert result.output.count("\n") == 1 and "shorten the title" in result.output
    assert (out / "kept").is_dir()


def test_an_unwritable_out_is_one_line_naming_the_path(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write(src, "good.dashboard.py", "Good")
    blocker = tmp_path / "file"
    blocker.write_text("")
    for args in (
        ["dashboards", "build", str(src), "--out", str(blocker / "out")],
        ["dashboards", "generate", "--out", str(blocker / "out")],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert str(blocker) in result.output and "check the path" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_two_dashboards_with_one_uid_are_refused_with_both_paths(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dashboard.py").write_text('dashboard = {"title": "A", "uid": "same"}\n')
    (src / "team").mkdir()
    (src / "team" / "b.dashboard.py").write_text('dashboard = {"title": "B", "uid": "same"}\n')
    with pytest.raises(DashboardBuildError) as raised:
        build(src, tmp_path / "out")
    message = str(raised.value)
    assert (
        str(src / "a.dashboard.py") in message and str(src / "team" / "b.dashboard.py") in message
    )
    assert "uid 'same'" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["--x.dashboard.py", "..--x.dashboard.py", " --x.dashboard.py"])
def test_from_configmap_refuses_a_name_without_a_folder(tmp_path: Path, name: str) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write(src, "main.dashboard.py", "Main")
    write(src, name, "X")
    result = CliRunner().invoke(
        cli, ["dashboards", "build", str(src), "--out", str(out), "--from-configmap"]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {src / name}: ") and result.output.count("\n") == 1
    assert "is not a folder name; rename it folder--name.dashboard.py" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n\nimport json\njson.loads('{')\n", "JSONDecodeError: Expecting property name"),
        ("x = 1\ny = (\n", "SyntaxError: '(' was never closed"),
        ("x = 1\n\ndef f():\n    return {}['k']\n\n\nf()\n", "KeyError: 'k'"),
        ("import sys\n\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_a_failing_file_is_reported_at_its_own_line(
    tmp_path: Path, source: str, message: str
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    path = src / "broken.dashboard.py"
    path.write_text(source)
    expected_line = {"JSON": 4, "Synt": 2, "KeyE": 4, "Syst": 3}[message[:4]]
    result = CliRunner().invoke(cli, ["dashboards", "build", str(src), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}: {message}")
    assert f"(line {expected_line}); fix the file" in result.output
    assert result.output.count("\n") == 1 and not out.exists()
