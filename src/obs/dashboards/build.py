"""Dashboards as code: ``obs dashboards build SRC_DIR --out OUT_DIR``.

The folder rules are grafana-dashboards-builder's (PyPI 0.3.1), so a tree made for it builds
the same way here:

* every ``*.dashboard.py`` under SRC_DIR, at any depth, is one dashboard;
* its Grafana folder is the first path component under SRC_DIR (deeper folders are flattened:
  Grafana folders here are one level); a file directly in SRC_DIR goes to ``General``;
* with ``from_configmap`` a root file named ``folder--name.dashboard.py`` goes to ``folder``
  (ConfigMaps cannot hold folders);
* the output is ``OUT_DIR/<folder>/<dashboard title>.json``; OUT_DIR is emptied first;
* SRC_DIR and OUT_DIR must differ;
* a dashboard without a ``uid`` gets one derived from its title (Grafana's provisioning needs a
  stable uid to keep the same dashboard across restarts).

Unlike it, a file that fails to run or defines no ``dashboard`` stops the build with its path
and the error, before OUT_DIR is touched (every file is converted and serialised first): silently skipping it would delete a team's dashboard
from Grafana at the next provisioning. ``dashboard`` may be a grafana-foundation-sdk builder or
a plain dict of classic dashboard JSON. A provisioning file covering every folder is written
to ``OUT_DIR/provisioning/dashboards/obs-build.yml``.
"""

from __future__ import annotations

import hashlib
import re
import runpy
import shutil
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder

from obs.dashboards.render import dashboard_data, dumps_json, dumps_yaml
from obs.dashboards.v2 import CLASSIC, FORMATS, to_v2
from obs.exceptions import ObsError

SUFFIX = ".dashboard.py"
DEFAULT_FOLDER = "General"
CONFIGMAP_SEPARATOR = "--"
PROVISIONING_FILE = "provisioning/dashboards/obs-build.yml"
#: Where the provisioning file expects OUT_DIR inside the Grafana container.
DEFAULT_GRAFANA_PATH = "/var/lib/grafana/dashboards"


#: Grafana's rule for a dashboard uid.
_UID_MAX = 40
_UID = re.compile(rf"^[A-Za-z0-9_-]{{1,{_UID_MAX}}}$")
#: The longest file name (in bytes) common file systems (ext4, APFS, NTFS) allow.
NAME_MAX = 255


class DashboardBuildError(ObsError):
    """A dashboard source could not be built; the message names the file."""


@dataclass(frozen=True, slots=True)
class BuiltDashboard:
    """One dashboard source, built: its folder, its title and its JSON data."""

    source: Path
    folder: str
    title: str
    data: dict[str, Any]


def folder_of(path: Path, src: Path, *, from_configmap: bool = False) -> str:
    """The Grafana folder of the source *path* under *src* (grafana-dashboards-builder's rules)."""
    parts = path.relative_to(src).parts
    if len(parts) > 1:
        return parts[0]
    if from_configmap and CONFIGMAP_SEPARATOR in path.name:
        folder = path.name.split(CONFIGMAP_SEPARATOR, 1)[0]
        # "" would write at OUT_DIR's root with a provider for the whole tree (every dashboard
        # loaded twice); "." and ".." would leave the folder or OUT_DIR.
        if not folder.strip() or folder in (".", ".."):
            raise DashboardBuildError(
                f"{path}: {folder!r} before {CONFIGMAP_SEPARATOR!r} is not a folder name; "
                f"rename it folder{CONFIGMAP_SEPARATOR}name{SUFFIX}, or drop the "
                f"{CONFIGMAP_SEPARATOR!r} for {DEFAULT_FOLDER}."
            )
        return folder
    return DEFAULT_FOLDER


def load_dashboard(path: Path) -> dict[str, Any]:
    """Run the source *path* and return its ``dashboard`` as classic JSON data."""
    try:
        namespace = runpy.run_path(str(path), run_name="__obs_dashboard__")
    except (Exception, SystemExit) as error:
        # SystemExit too: a file calling sys.exit() is a failing file, not obs's exit status.
        line = _source_line(path, error)
        at = f" (line {line})" if line is not None else ""
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise DashboardBuildError(f"{path}: {what}{at}; fix the file and build again.") from error
    if "dashboard" not in namespace:
        raise DashboardBuildError(
            f"{path}: defines no `dashboard`; assign a grafana-foundation-sdk Dashboard builder "
            "or a dict of dashboard JSON to `dashboard`."
        )
    dashboard = namespace["dashboard"]
    if not isinstance(dashboard, cogbuilder.Builder | Mapping):
        raise DashboardBuildError(
            f"{path}: `dashboard` is a {type(dashboard).__name__}; make it a "
            "grafana-foundation-sdk Dashboard builder or a dict of dashboard JSON."
        )
    try:
        data = dashboard_data(dashboard)
    except Exception as error:
        raise DashboardBuildError(f"{path}: cannot build `dashboard`: {error}") from error
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise DashboardBuildError(
            f"{path}: the dashboard has no title; the output is named after it."
        )
    return data


def derived_uid(title: str) -> str:
    """A stable Grafana uid for a dashboard that has none: its title as a slug (``My API`` ->
    ``my-api``), shortened with a hash of the title when it exceeds Grafana's 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    if slug and len(slug) <= _UID_MAX:
        return slug
    digest = hashlib.sha256(title.encode("utf-8")).hexdigest()[:8]
    return f"{slug[: _UID_MAX - 9].rstrip('-')}-{digest}".lstrip("-")


def _with_uid(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    uid = data.get("uid")
    if uid is None or uid == "":
        return {**data, "uid": derived_uid(data["title"])}
    if not isinstance(uid, str) or not _UID.match(uid):
        raise DashboardBuildError(
            f"{path}: uid {uid!r} is not a Grafana dashboard uid; use 1 to 40 letters, digits, "
            "'-' or '_', or leave it out to derive one from the title."
        )
    return data


def _source_line(path: Path, error: BaseException) -> int | None:
    """The line of *path* itself where *error* happened: its syntax error's line, or the last
    traceback frame in the file (not runpy's, nor that of a library the file called)."""
    if isinstance(error, SyntaxError) and error.filename == str(path):
        return error.lineno
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    return frames[-1].lineno if frames else None


def _safe_name(title: str) -> str:
    # The title names the file; a "/" would make a sub-folder Grafana reads as another folder.
    return title.replace("/", "-").replace("\0", "")


def collect(src: Path, *, from_configmap: bool = False) -> list[BuiltDashboard]:
    """Build every source under *src*, in path order; the first broken one raises."""
    built = []
    for path in sorted(src.rglob(f"*{SUFFIX}")):
        if not path.is_file():
            continue
        data = _with_uid(path, load_dashboard(path))
        built.append(
            BuiltDashboard(
                path, folder_of(path, src, from_configmap=from_configmap), data["title"], data
            )
        )
    seen: dict[tuple[str, str], Path] = {}
    for item in built:
        key = (item.folder, _safe_name(item.title))
        if key in seen:
            raise DashboardBuildError(
                f"{item.source} and {seen[key]} both build {item.folder}/{key[1]}.json; "
                "give the dashboards different titles."
            )
        seen[key] = item.source
    # Grafana keeps one dashboard per uid: the second would silently replace the first.
    uids: dict[str, Path] = {}
    for item in built:
        uid = item.data["uid"]
        if uid in uids:
            raise DashboardBuildError(
                f"{item.source} and {uids[uid]} both build a dashboard with uid {uid!r}; "
                "give one of them another uid (or title, when the uid is derived from it)."
            )
        uids[uid] = item.source
    return built


def provisioning(folders: list[str], grafana_path: str) -> dict[str, Any]:
    """A Grafana file provider per folder, each loading its own sub-folder of OUT_DIR."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"obs-build-{folder}",
                "orgId": 1,
                # "General" is Grafana's root, written as no folder at all.
                "folder": "" if folder == DEFAULT_FOLDER else folder,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {
                    "path": f"{grafana_path.rstrip('/')}/{folder}",
                    "foldersFromFilesStructure": False,
                },
            }
            for folder in folders
        ],
    }


def build(
    src: Path,
    out: Path,
    *,
    from_configmap: bool = False,
    fmt: str = CLASSIC,
    grafana_path: str = DEFAULT_GRAFANA_PATH,
) -> list[Path]:
    """Build every dashboard under *src* into *out* (emptied first); return the files written."""
    if fmt not in FORMATS:
        raise DashboardBuildError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if not src.is_dir():
        raise DashboardBuildError(
            f"{src} is not a folder; give the folder of *.dashboard.py files."
        )
    source, target = src.resolve(), out.resolve()
    if source == target:
        raise DashboardBuildError("OUT_DIR can't be the same as SRC_DIR; choose another --out.")
    if source.is_relative_to(target):
        raise DashboardBuildError(
            f"OUT_DIR {out} contains SRC_DIR {src} and is emptied before the build; "
            "choose an --out outside it."
        )
    built = collect(src, from_configmap=from_configmap)
    if not built:  # as grafana-dashboards-builder: nothing to build leaves OUT_DIR alone
        return []
    files = render(built, fmt=fmt, grafana_path=grafana_path)
    # Everything is converted and serialised: only now is OUT_DIR emptied.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def render(
    built: list[BuiltDashboard], *, fmt: str = CLASSIC, grafana_path: str = DEFAULT_GRAFANA_PATH
) -> dict[str, str]:
    """The text of every output file, by its path under OUT_DIR; a dashboard that cannot be
    converted to *fmt* raises with its source's path."""
    files = {}
    for item in built:
        try:
            text = dumps_json(item.data if fmt == CLASSIC else to_v2(item.data, fmt))
        except Exception as error:
            raise DashboardBuildError(
                f"{item.source}: cannot convert the dashboard to {fmt}: "
                f"{type(error).__name__}: {error}; fix the file and build again."
            ) from error
        name = f"{_safe_name(item.title)}.json"
        if len(name.encode("utf-8")) > NAME_MAX:
            raise DashboardBuildError(
                f"{item.source}: the title makes a file name of {len(name.encode('utf-8'))} "
                f"bytes, over the {NAME_MAX} a file system allows; shorten the title."
            )
        files[f"{item.folder}/{name}"] = text
    folders = sorted({item.folder for item in built})
    header = "Generated by `obs dashboards build`: edit the *.dashboard.py sources, not this file."
    files[PROVISIONING_FILE] = dumps_yaml(provisioning(folders, grafana_path), header=header)
    return files
