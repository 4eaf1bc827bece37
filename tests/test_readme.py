"""The README is a contract too: its tables cover everything, its snippets run."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from obs.config import ENVIRONMENT_VARIABLES
from obs.metrics import CATALOGUE
from tests.conftest import ROOT, run_python

README = (ROOT / "README.md").read_text()


def quickstarts() -> dict[str, str]:
    blocks = re.findall(r"```python\n# quickstart: (\w+)\n(.*?)```", README, flags=re.S)
    return dict(blocks)


def test_every_environment_variable_is_documented() -> None:
    for var in ENVIRONMENT_VARIABLES:
        assert f"| `{var}` |" in README, var


def test_every_metric_is_documented() -> None:
    for spec in CATALOGUE:
        assert f"| `{spec.name}` | {spec.kind} |" in README, spec.name


def test_the_two_commands_open_the_readme() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == [
        "make demo",
        "make test",
    ]


DRIVE = textwrap.dedent(
    """
    import asyncio, httpx, json, sys
    sys.path.insert(0, {dir!r})
    from quickstart import app

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            missing = await client.get("/nothing-here")
            metrics = await client.get("/metrics")
        print(json.dumps({{
            "status": missing.status_code,
            "request_id": missing.headers.get("x-request-id"),
            "metrics": metrics.text,
        }}))

    asyncio.run(main())
    """
)


DRIVE_WSGI = textwrap.dedent(
    """
    import io, json, sys
    from wsgiref.util import setup_testing_defaults
    sys.path.insert(0, {dir!r})
    from quickstart import app

    def call(path):
        environ = {{"PATH_INFO": path}}
        setup_testing_defaults(environ)
        seen = {{}}
        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = int(status[:3]), dict(headers)
        body = app(environ, start_response)
        data = b"".join(body)
        getattr(body, "close", lambda: None)()
        return seen["status"], seen["headers"], data.decode()

    status, headers, _ = call("/nothing-here")
    from prometheus_client import generate_latest
    metrics = generate_latest().decode()  # the default registry the snippets record into
    print(json.dumps({{
        "status": status,
        "request_id": headers.get("X-Request-ID"),
        "metrics": metrics,
    }}))
    """
)


@pytest.mark.parametrize(
    "name", ["fastapi", "litestar", "quart", "flask", "falcon", "pyramid", "bottle", "wsgi"]
)
def test_quickstart_snippets_run_verbatim(name: str, tmp_path: Path) -> None:
    snippet = quickstarts()[name]
    (tmp_path / "quickstart.py").write_text(snippet)
    driver = DRIVE if name in ("fastapi", "litestar", "quart") else DRIVE_WSGI
    proc = run_python(driver.format(dir=str(tmp_path)), env={"OBS_LOG_FORMAT": "json"})
    assert proc.returncode == 0, proc.stderr
    *log_lines, result_line = proc.stdout.strip().splitlines()
    result = json.loads(result_line)
    assert result["status"] == (200 if name == "wsgi" else 404)
    assert len(result["request_id"]) == 32
    assert 'http_route="_unmatched"' in result["metrics"]
    access = [json.loads(line) for line in log_lines if '"obs.access"' in line]
    assert [a["request_id"] for a in access] == [result["request_id"]]
    assert access[0]["service"] == "shop"


DJANGO_BASE = textwrap.dedent(
    """
    SECRET_KEY = "test-only"
    ALLOWED_HOSTS = ["testserver"]
    ROOT_URLCONF = "quickurls"
    MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
    """
)
DJANGO_URLS = textwrap.dedent(
    """
    from django.http import HttpResponse
    from django.urls import path
    from obs.django import metrics_view

    def item(request, item_id):
        return HttpResponse(str(item_id))

    urlpatterns = [path("items/<int:item_id>/", item), path("metrics", metrics_view)]
    """
)
DRIVE_DJANGO = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {dir!r})
    os.environ["DJANGO_SETTINGS_MODULE"] = "quicksettings"
    import django
    django.setup()
    from django.test import Client
    client = Client()
    response = client.get("/items/7/")
    metrics = client.get("/metrics").content.decode()
    print(json.dumps({{"status": response.status_code,
                      "request_id": response.headers.get("X-Request-ID"),
                      "metrics": metrics}}))
    """
)


def test_django_quickstart_settings_run_verbatim(tmp_path: Path) -> None:
    match = re.search(r"```python\n# quickstart: django \(settings.py\)\n(.*?)```", README, re.S)
    assert match, "README has no Django quick start"
    (tmp_path / "quicksettings.py").write_text(DJANGO_BASE + match.group(1))
    (tmp_path / "quickurls.py").write_text(DJANGO_URLS)
    proc = run_python(DRIVE_DJANGO.format(dir=str(tmp_path)), env={"OBS_LOG_FORMAT": "json"})
    assert proc.returncode == 0, proc.stderr
    *log_lines, result_line = proc.stdout.strip().splitlines()
    result = json.loads(result_line)
    assert result["status"] == 200 and len(result["request_id"]) == 32
    assert 'http_route="/items/<int:item_id>/"' in result["metrics"]
    access = [json.loads(line) for line in log_lines if '"obs.access"' in line]
    assert access[0]["request_id"] == result["request_id"]
    assert access[0]["service"] == "shop"
