"""Column names as real CSV headers have them, through a real pipeline run and a real
`mlflow models serve` request that sends the CSV's own column names.

The penguins table with its columns renamed: spaces and parentheses, a dot (also the slicing
column), a dash and a slash, a leading digit, non-ASCII letters (the label too), and `Year` next
to `year` (two names differing only in case, both model features).
"""
from __future__ import annotations

import html
import io
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import mlflow_runs
from conftest import DATA, pipeline_command
from pipeline.config.dataset_spec import tf_name
from pipeline.config.settings import Settings
from pipeline.tracking import mlflow_cli, mlflow_store, registry, serving_pyfunc

pytestmark = pytest.mark.e2e

RENAMED = {
    "species": "Espèce",
    "island": "island.name",
    "bill_length_mm": "bill length (mm)",
    "bill_depth_mm": "bill-depth/mm",
    "flipper_length_mm": "1st flipper",
    "body_mass_g": "Masse corporelle",
    "sex": "sex class",
    "year": "Year",
}
FEATURES = ["island.name", "bill length (mm)", "bill-depth/mm", "1st flipper",
            "Masse corporelle", "sex class", "Year", "year"]
SPEC = """name: columns
csv: data.csv
task: multiclass
label: "Espèce"
classes: [Adelie, Chinstrap, Gentoo]
slice_by: island.name
features:
  "Espèce": {type: categorical, role: label}
  island.name: {type: categorical}
  "bill length (mm)": {type: float, buckets: 4}
  bill-depth/mm: {type: float}
  1st flipper: {type: float}
  Masse corporelle: {type: float}
  sex class: {type: categorical}
  Year: {type: categorical_int}
  year: {type: float}
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(pipeline_command(*args), capture_output=True, text=True, timeout=900,
                          env=mlflow_runs.clean_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("columns")
    folder = root / "data" / "columns"
    folder.mkdir(parents=True)
    frame = pd.read_csv(DATA / "penguins" / "data.csv").rename(columns=RENAMED)
    frame["year"] = frame["Masse corporelle"] / 1000  # `year` beside `Year`
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    settings = Settings(dataset="columns", data_root=root / "data",
                        output_root=root / "outputs")
    where = ("--dataset", "columns", "--data-root", str(settings.data_root),
             "--output-root", str(settings.output_root))
    # Drafted from the data as a user would, then adopted unreviewed.
    _cli("schema", *where)
    _cli("expectations", *where)
    drafts = settings.output_root / "columns"
    (folder / "schema").mkdir()
    shutil.copy(drafts / "schema_draft" / "schema.pbtxt", folder / "schema" / "schema.pbtxt")
    shutil.copy(drafts / "expectations_draft" / "expectations.json", folder)
    done = _cli("run", *where, "--epochs", "10")
    assert "now champion" in done.stdout, done.stdout[-3000:]
    return settings


@pytest.fixture(scope="module")
def champion(settings):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_runs.store_uri(settings))
    return client, client.get_model_version_by_alias(settings.registered_model_name,
                                                     registry.CHAMPION)


def test_serving_raw_takes_tf_names_and_the_export_maps_the_columns_to_them(settings,
                                                                         champion):
    import tensorflow as tf

    _, version = champion
    export = Path(version.tags[registry.TAG_MODEL_URI]) / "Format-Serving"
    _, specs = tf.saved_model.load(str(export)).signatures["serving_raw"] \
        .structured_input_signature
    columns = json.loads((export / serving_pyfunc.COLUMNS_FILE).read_text(encoding="utf-8"))
    assert columns["inputs"] == {c: tf_name(c) for c in FEATURES}
    assert sorted(specs) == sorted(tf_name(c) for c in FEATURES)
    assert len(set(specs)) == len(FEATURES)  # Year and year stay apart



def test_mlflow_model_signature_has_the_csvs_column_names(settings, champion, monkeypatch):
    from mlflow.models import get_model_info

    _, version = champion
    monkeypatch.setenv(mlflow_store.TRACKING_URI_ENV, mlflow_runs.store_uri(settings))
    info = get_model_info(f"models:/{version.name}/{version.version}")
    assert sorted(c.name for c in info.signature.inputs.inputs) == sorted(FEATURES)


def test_served_model_answers_requests_with_the_original_column_names(settings):
    settings = settings.replace(serve_port=mlflow_runs.free_port(), serve_workers=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
        env = mlflow_cli.serve_env(settings)
        ping = f"http://127.0.0.1:{settings.serve_port}/ping"
        with mlflow_runs.server(mlflow_cli.serve_command(settings), env, ping):
            frame = pd.read_csv(settings.load_spec().csv_path).head(20)
            truth = frame.pop("Espèce")
            status, text = mlflow_cli.post(mlflow_cli.invocations_url(settings),
                                           mlflow_cli.request_body(frame))
            assert status == 200, text
            answers = pd.DataFrame(json.loads(text)["predictions"])
            assert list(answers.columns) == ["probability_Adelie", "probability_Chinstrap",
                                             "probability_Gentoo", "class"]
            # 20 Adelie rows of a model that was blessed at >= 0.9 accuracy.
            assert (answers["class"] == truth).mean() >= 0.9
            # `make predict` reads rows from the CSV and sends them as they are.
            out = io.StringIO()
            assert mlflow_cli.predict(settings, rows=3, out=out) == 0, out.getvalue()
            assert "HTTP 200" in out.getvalue()


def test_data_docs_and_tracked_params_show_the_original_names(settings, champion):
    client, version = champion
    docs = list((settings.output_root / "columns" / "pipeline_root").glob(
        "GreatExpectationsValidator/report/*/data_docs.html"))
    assert docs
    page = html.unescape(docs[0].read_text(encoding="utf-8"))
    for column in ("bill length (mm)", "bill-depth/mm", "Espèce", "Year", "year"):
        assert column in page
    parent = client.get_run(version.run_id)
    children = mlflow_runs.child_runs(client, parent)
    assert children["Evaluator"].data.params["slicing"] == "overall; island.name"


def test_scoring_a_file_keeps_its_names_and_logs_drift_under_names_mlflow_takes(settings):
    """`make score` on new rows without the label: predictions.csv has the file's own header,
    and the MLflow scoring run has each column's drift, `(` and `)` replaced (MLflow refused
    `drift/bill length (mm)`, which stopped the command after the predictions were written)."""
    from mlflow import MlflowClient

    new = settings.output_root / "new rows.csv"
    frame = pd.read_csv(settings.data_root / "columns" / "data.csv").drop(columns=["Espèce"])
    frame.to_csv(new, index=False)  # all rows: a part could break the contract's null shares
    done = _cli("score", "--dataset", "columns", "--data-root", str(settings.data_root),
                "--output-root", str(settings.output_root), "--csv", str(new))
    scored = next((settings.output_root / "columns" / "scores").glob("*/predictions.csv"))
    written = pd.read_csv(scored)
    assert list(written.columns[:len(frame.columns)]) == list(frame.columns)
    assert len(written) == len(frame)
    assert set(written["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    [run_id] = [line.split()[2] for line in done.stdout.splitlines()
                if line.startswith("MLflow run ")]
    metrics = MlflowClient(mlflow_runs.store_uri(settings)).get_run(run_id).data.metrics
    assert "drift/bill length _mm_" in metrics and metrics["rows"] == len(frame)
