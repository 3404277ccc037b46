"""The MLflow UI of `make mlflow-ui` in a real browser: headless Chromium (Debian's `chromium`,
which `make test` installs when it may) loads the pages the command prints, on the shared
penguin runs, and the test reads the rendered DOM: the runs view lists each pipeline run by name
with its datasets, the registered model's page shows the `champion` alias. Screenshots of both
are left in the test's tmp folder."""
from __future__ import annotations

import html.parser
import io
import shutil
import subprocess
from pathlib import Path

import pytest

import mlflow_runs
from mlflow_runs import client, runs  # noqa: F401 - pytest fixtures
from pipeline.tracking import mlflow_cli, registry

CHROMIUM = "chromium"
INSTALL = ("Chromium is needed for the MLflow UI browser test and is not installed: `make test` "
           "installs Debian's package when run as root on a machine with apt-get; otherwise run "
           "`sudo apt-get update && sudo apt-get install -y chromium` (it must be on PATH as "
           "`chromium`).")
# As the probe of this machine runs it: no sandbox as root, no GPU, and none of Chromium's own
# network traffic (updates, sync, QUIC), which a closed network refuses.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
WINDOW = "1600,1000"
BUDGET_MS = 30000  # virtual time for the single-page app to fetch and render
ATTEMPTS = 3  # a page read before the app has rendered it is read again


def chromium_binary() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail(INSTALL)
    return path


def chromium(url: str, workdir: Path, *args: str) -> str:
    """One headless Chromium run on url with a fresh profile; its stdout."""
    profile = workdir / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    command = [chromium_binary(), *FLAGS, f"--user-data-dir={profile}",
               f"--window-size={WINDOW}", f"--virtual-time-budget={BUDGET_MS}", *args, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def screenshot(url: str, path: Path) -> Path:
    chromium(url, path.parent, f"--screenshot={path}")
    assert path.read_bytes().startswith(b"\x89PNG"), path
    return path


class _Rows(html.parser.HTMLParser):
    """The text of every element with role="row", by its row-id (AG Grid splits a row between
    its pinned and scrolling columns under one row-id), else by order."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.stack: list[str | None] = []  # per open element: the row it opens, or None

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        key = None
        if attrs.get("role") == "row":
            key = attrs.get("row-id") or f"#{len(self.rows)}"
            self.rows.setdefault(key, [])
        self.stack.append(key)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for key in {k for k in self.stack if k is not None}:
            self.rows[key].append(data)


def rows(dom: str) -> dict[str, str]:
    parser = _Rows()
    parser.feed(dom)
    return {k: " ".join(" ".join(parts).split()) for k, parts in parser.rows.items()}


def rendered_rows(url: str, workdir: Path, ready) -> dict[str, str]:
    """The page's rows once ready(rows) holds (the DOM is read again up to ATTEMPTS times)."""
    for _ in range(ATTEMPTS):
        found = rows(chromium(url, workdir, "--dump-dom"))
        if ready(found):
            break
    return found


@pytest.fixture(scope="module")
def ui(runs):
    """`make mlflow-ui`'s server on a free port of 127.0.0.1, stopped after the module."""
    chromium_binary()  # no server without a browser to look at it
    settings = runs.settings.replace(mlflow_ui_port=mlflow_runs.free_port())
    command = mlflow_cli.ui_command(settings)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    with mlflow_runs.server(command, mlflow_cli.mlflow_env(settings),
                            f"{mlflow_cli.ui_url(settings)}/health"):
        yield settings


@pytest.mark.e2e
def test_ui_command_prints_the_runs_and_model_pages(runs, client, monkeypatch):
    started = []
    monkeypatch.setattr(mlflow_cli, "_exec", lambda command, env: started.append(command))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = io.StringIO()
    assert mlflow_cli.ui(runs.settings, out) == 0
    assert started == [mlflow_cli.ui_command(runs.settings)]
    experiment = client.get_experiment_by_name(runs.settings.full_pipeline_name).experiment_id
    printed = out.getvalue()
    assert f"{mlflow_cli.ui_url(runs.settings)}/#/experiments/{experiment}" \
           "?workflowType=machine_learning" in printed
    assert f"{mlflow_cli.ui_url(runs.settings)}/#/models/csv2model-penguins" in printed


@pytest.mark.e2e
def test_runs_view_lists_each_pipeline_run_with_its_datasets(runs, client, ui, tmp_path):
    experiment = client.get_experiment_by_name(ui.full_pipeline_name).experiment_id
    url = mlflow_cli.experiment_url(ui, experiment)
    parents = [mlflow_runs.parent_run(client, ui, r)
               for r in (runs.first_tfx_run, runs.second_tfx_run)]
    expected = {}
    for parent in parents:
        datasets = sorted(
            (next(t.value for t in i.tags if t.key == "mlflow.data.context"), i.dataset)
            for i in parent.inputs.dataset_inputs)
        assert [context for context, _ in datasets] == ["eval", "train"]
        expected[parent.info.run_id] = [parent.info.run_name] + [
            f"{d.name} ({d.digest}) {context}" for context, d in datasets]

    found = rendered_rows(url, tmp_path,
                          lambda r: all(run_id in r for run_id in expected))
    path = screenshot(url, tmp_path / "runs.png")
    for run_id, texts in expected.items():
        assert run_id in found, (f"run {texts[0]} is not in the runs view ({path}): "
                                 f"{sorted(found.values())}")
        for text in texts:
            assert text in found[run_id], (text, found[run_id], path)
    # The Model training view's runs table (its header row), not the GenAI overview of traces.
    header = " ".join(text for key, text in found.items() if key not in expected)
    assert "Run Name" in header and "Dataset" in header and "Source" in header, found


@pytest.mark.e2e
def test_registered_model_page_shows_champion_on_its_version(runs, client, ui, tmp_path):
    name = ui.registered_model_name
    champion = client.get_model_version_by_alias(name, registry.CHAMPION).version
    url = mlflow_cli.model_url(ui)

    def version_row(found: dict[str, str], version) -> str | None:
        return next((text for text in found.values() if f"Version {version} " in f"{text} "),
                    None)

    found = rendered_rows(url, tmp_path, lambda r: version_row(r, champion) is not None)
    path = screenshot(url, tmp_path / "model.png")
    row = version_row(found, champion)
    assert row is not None, (path, found)
    assert f"@ {registry.CHAMPION}" in row, (row, path)
    others = [v.version for v in client.search_model_versions(f"name = '{name}'")
              if v.version != champion]
    assert others  # the second, worse run's version
    for version in others:
        other = version_row(found, version) or ""
        # The alias only on the champion; the worse version's tags say why it was not blessed.
        assert f"@ {registry.CHAMPION}" not in other, found
        assert f"below champion version {champion}" in other, found
