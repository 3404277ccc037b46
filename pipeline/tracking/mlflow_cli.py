"""The MLflow side from the command line: `python -m pipeline.tracking.mlflow_cli ui|serve|predict`.

Each command takes the same options as `python -m pipeline run` (--dataset, --output-root,
--serve-port, ...), so it finds the store that run wrote to: outputs/<dataset>/mlflow, or
whatever MLFLOW_TRACKING_URI names.

  ui       the MLflow UI on 127.0.0.1 against that store (a tracking server's URI: its own UI)
  server   an MLflow tracking server on PostgreSQL for a team (tracking_server.py)
  serve    `mlflow models serve` of the registered model's `champion`, local environment only
  predict  a few rows of the dataset's CSV to the served model, and its answer
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import TextIO

from components.ingest import csv_format
from pipeline.config import settings as settings_lib
from pipeline.config.settings import Settings

HOST = "127.0.0.1"  # both servers are for this machine only
# MLflow 3.17's UI opens every experiment in its GenAI view (traces) unless the URL or the
# browser's last choice of the "GenAI / Model training" switch says otherwise; the experiment's
# mlflow.experimentKind tag, which earlier MLflow 3 UIs follow, no longer decides it.
TRAINING_VIEW = "workflowType=machine_learning"


def mlflow_env(settings: Settings) -> dict[str, str]:
    """The environment for an mlflow subprocess: this run's store, this virtualenv's scripts
    first on PATH (mlflow starts `uvicorn` by name, and the venv need not be activated), and
    TensorFlow's C++ chatter off."""
    from pipeline.tracking import mlflow_store

    env = dict(os.environ, **{mlflow_store.TRACKING_URI_ENV: mlflow_store.tracking_uri(settings)})
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def ui_command(settings: Settings) -> list[str]:
    from pipeline.tracking import mlflow_store

    return [sys.executable, "-m", "mlflow", "ui",
            "--backend-store-uri", mlflow_store.tracking_uri(settings),
            # For experiments created from the UI; the pipeline's own set their location.
            "--default-artifact-root", mlflow_store.artifact_root(settings),
            "--host", HOST, "--port", str(settings.mlflow_ui_port), "--workers", "1"]


# Put first on the model server's PYTHONPATH: its sitecustomize.py keeps TCP_NODELAY on
# uvicorn's connections with more than one worker (see that file).
SERVE_HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve_hook")


def serve_workers(settings: Settings) -> int:
    """Worker processes for `mlflow models serve`: the setting, or one per core."""
    return settings.serve_workers or os.cpu_count() or 1


def serve_command(settings: Settings) -> list[str]:
    from pipeline.tracking import registry

    return [sys.executable, "-m", "mlflow", "models", "serve",
            "--model-uri", registry.model_uri(settings.registered_model_name),
            # Serve from this virtualenv: no environment to build, nothing to download.
            "--env-manager", "local",
            "--host", HOST, "--port", str(settings.serve_port),
            # uvicorn worker processes, each with the model loaded: one request at a time per
            # process runs Python, so this is what uses more than one core.
            "--workers", str(serve_workers(settings))]


def serve_env(settings: Settings) -> dict[str, str]:
    """mlflow_env, with the start-up hook that keeps uvicorn's workers off Nagle's algorithm."""
    env = mlflow_env(settings)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SERVE_HOOK_DIR, env.get("PYTHONPATH")) if p)
    return env


def ui_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.mlflow_ui_port}"


def experiment_url(settings: Settings, experiment_id: str) -> str:
    """The experiment's runs in the UI's "Model training" view (the SPA routes after '#')."""
    return f"{ui_url(settings)}/#/experiments/{experiment_id}?{TRAINING_VIEW}"


def model_url(settings: Settings) -> str:
    return f"{ui_url(settings)}/#/models/{settings.registered_model_name}"


def pipeline_experiment(settings: Settings) -> str | None:
    """The id of the pipeline's experiment in the store, or None before its first run."""
    from mlflow import MlflowClient

    from pipeline.tracking import mlflow_store

    experiment = MlflowClient(mlflow_store.tracking_uri(settings)).get_experiment_by_name(
        settings.full_pipeline_name)
    return experiment.experiment_id if experiment is not None else None


def invocations_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.serve_port}/invocations"


def _exec(command: list[str], env: dict[str, str]) -> None:
    sys.stdout.flush()
    os.execve(command[0], command, env)  # Ctrl-C then goes straight to the server


def ui(settings: Settings, out: TextIO = sys.stdout) -> int:
    from pipeline.tracking import mlflow_store

    if not mlflow_store.uses_local_store(settings):
        uri = mlflow_store.tracking_uri(settings)
        if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
            out.write(f"MLFLOW_TRACKING_URI is set: the UI is the tracking server's, "
                      f"{mlflow_store.display_uri(settings)}\n")
            experiment = pipeline_experiment(settings)
            if experiment is not None:
                base = mlflow_store.display_uri(settings).rstrip("/")
                out.write(f"  runs of {settings.full_pipeline_name}: {base}/#/experiments/"
                          f"{experiment}?{TRAINING_VIEW}\n  registered model:  "
                          f"{base}/#/models/{settings.registered_model_name}\n")
            return 0
        # A database URI: a UI on 127.0.0.1 over it, the URL in the environment only.
        out.write(f"MLflow UI: {ui_url(settings)}  (store {mlflow_store.display_uri(settings)};"
                  " Ctrl-C stops it)\n")
        command = [c for c in ui_command(settings) if c != uri]
        command.remove("--backend-store-uri")
        _exec(command, dict(mlflow_env(settings), MLFLOW_BACKEND_STORE_URI=uri))
        return 0
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    out.write(f"MLflow UI: {ui_url(settings)}  (store {mlflow_store.display_uri(settings)}; "
              "Ctrl-C stops it)\n")
    experiment = pipeline_experiment(settings)
    if experiment is not None:
        out.write(f"  runs of {settings.full_pipeline_name}: {experiment_url(settings, experiment)}"
                  f"\n  registered model:  {model_url(settings)}\n")
    _exec(ui_command(settings), mlflow_env(settings))
    return 0


def champion(settings: Settings) -> str | None:
    """The version `champion` points at, or None when no model has been blessed yet."""
    from pipeline.tracking import mlflow_store, registry

    with mlflow_store.active_store(settings) as client:
        return registry.champion_version(client, settings.registered_model_name)


def serve(settings: Settings, out: TextIO = sys.stdout) -> int:
    from pipeline.tracking import registry

    version = champion(settings)
    if version is None:
        out.write(f"No champion for {settings.registered_model_name} yet: run the pipeline "
                  f"(`make pipeline DATASET={settings.dataset}`) until a model is blessed.\n")
        return 1
    out.write(f"Serving {registry.model_uri(settings.registered_model_name)} (version {version})"
              f" at {invocations_url(settings)} with {serve_workers(settings)} worker(s); "
              f"`make predict DATASET={settings.dataset}` sends it a few rows. Ctrl-C stops it.\n")
    _exec(serve_command(settings), serve_env(settings))
    return 0


def feature_types(settings: Settings) -> dict[str, str]:
    """Column name -> MLflow type ('double', 'string') from the champion's input signature."""
    import mlflow

    from pipeline.tracking import mlflow_store, registry

    with mlflow_store.active_store(settings):
        info = mlflow.models.get_model_info(registry.model_uri(settings.registered_model_name))
    return {c.name: c.type.name for c in info.signature.inputs.inputs}


def sample_rows(settings: Settings, types: dict[str, str], rows: int):
    """`rows` rows from the middle of equal chunks of the CSV (the first rows of a sorted file
    would all be one class), with the label alongside for comparison."""
    from pipeline.tracking import registry

    spec = settings.load_spec()
    frame = registry.feature_rows(spec.csv_path, list(types),
                                  {n for n, t in types.items() if t != "string"},
                                  missing_values=spec.missing_values)
    labels = csv_format.read_frame(spec.csv_path, usecols=[spec.label], dtype=str)[spec.label]
    picked = sorted({int((i + 0.5) * len(frame) / rows) for i in range(min(rows, len(frame)))})
    return frame.iloc[picked].reset_index(drop=True), labels.iloc[picked].reset_index(drop=True)


def request_body(frame) -> str:
    """MLflow's dataframe_split format; missing values go as null."""
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})


def post(url: str, body: str, timeout: float = 60) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def predict(settings: Settings, rows: int = 5, out: TextIO = sys.stdout) -> int:
    if champion(settings) is None:
        out.write(f"No champion for {settings.registered_model_name} yet: nothing to ask.\n")
        return 1
    frame, labels = sample_rows(settings, feature_types(settings), rows)
    body = request_body(frame)
    url = invocations_url(settings)
    out.write(f"POST {url}\n{body}\n")
    try:
        status, text = post(url, body)
    except urllib.error.URLError as e:
        out.write(f"No answer from {url} ({e.reason}): start the server with "
                  f"`make serve DATASET={settings.dataset}`.\n")
        return 1
    if status != 200:
        out.write(f"HTTP {status}: {text}\n")
        return 1
    predictions = json.loads(text)["predictions"]
    if predictions and "prediction" in predictions[0]:
        out.write(prediction_table(labels, [p["prediction"] for p in predictions], status))
        return 0
    out.write(f"HTTP {status}\n{'actual':<12} {'predicted':<12} probabilities\n")
    for label, prediction in zip(labels, predictions):
        predicted = prediction.pop("class")
        probabilities = "  ".join(f"{k.removeprefix('probability_')} {v:.3f}"
                                  for k, v in prediction.items())
        out.write(f"{str(label):<12} {predicted:<12} {probabilities}\n")
    return 0


def prediction_table(labels, predictions: list[float], status: int = 200) -> str:
    """A regression model's answer: actual beside predicted, and the error."""
    lines = [f"HTTP {status}", f"{'actual':>14} {'predicted':>14} {'error':>12}"]
    for label, predicted in zip(labels, predictions):
        try:
            error = f"{float(predicted) - float(label):+12.4g}"
        except (TypeError, ValueError):  # an empty label
            error = f"{'':>12}"
        lines.append(f"{str(label):>14} {float(predicted):>14.6g} {error}")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tracking.mlflow_cli",
                                     description="MLflow UI, model server and a test request.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("ui", "start the MLflow UI on 127.0.0.1 against the dataset's store"),
        ("serve", "serve the registered champion model with `mlflow models serve`"),
        ("predict", "send a few rows of the dataset's CSV to the served model"),
        ("server", "run an MLflow tracking server: backend store MLFLOW_BACKEND_STORE_URI "
                   "(PostgreSQL), artifacts served from a folder"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        settings_lib.add_arguments(sub)
        if name == "predict":
            sub.add_argument("--rows", type=int, default=5, help="rows to send (default: 5)")
        if name == "server":
            sub.add_argument("--host", default=HOST,
                             help=f"address to listen on (default: {HOST}, this machine only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_lib.from_args(args)
    # MLflow 3 sends usage telemetry from a background thread; nothing here reaches a network.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if args.command == "ui":
        return ui(settings)
    if args.command == "serve":
        return serve(settings)
    if args.command == "server":
        from pipeline.tracking import tracking_server

        return tracking_server.serve(settings, host=args.host)
    return predict(settings, args.rows)


if __name__ == "__main__":
    sys.exit(main())
