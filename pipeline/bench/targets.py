"""The speed targets, measured first by `make bench`: whole-process wall time of what a user runs,
each against its target, with model quality beside it and TFX's own reference pipeline on the
same penguins data as the yardstick, all in one invocation on one machine.

| # | what | target |
|---|---|---|
| 1 | taxi, first run (fresh output root) | <= 25 s |
| 2 | penguins, first run | <= 15 s |
| 3 | taxi re-run with nothing changed ("Up to date", no TFX) | <= 5 s; `--force` re-run reported |
| 4 | a taxi CSV breaking a critical expectation, refused with exit 1 | <= 25 s |
| 5 | breast cancer (32 numeric columns, 569 rows), drafted and run: Transform | <= 20 s |
| 6 | taxi eval AUC 0.956 +- 0.003 and blessed; penguins accuracy >= 0.98 and blessed | |
| 7 | penguins first run, ours / TFX's reference pipeline | <= 0.2 |
| 8 | a scheduled Airflow run with nothing changed, whole DAG (every task skipped) | <= 60 s |
| 9 | taxi first run: MLflow logging after the Pusher | <= 3 s |
| 10 | taxi first run: its first line, from the command's start | <= 2 s |
| 11 | taxi re-run after changing only `--epochs`, / the seed-style Keras script | <= 3 |

Row 11's re-run runs, as a user's would, in the warm worker the taxi first run left
(pipeline/runners/warm_reruns.py); 11b is the same change in a process of its own
(CSV2MODEL_WARM_RERUNS=0), reported. Every other first run leaves no worker.

Each first run's seconds are also split into fixed costs (pipeline/bench/fixed_costs.py):
imports, set-up, each stage, TFX between stages, MLflow logging, exit.

Each run is `python -m pipeline ...` in a subprocess, timed from start to exit by the bench
(pipeline/bench/process.py); its output goes to <root>/logs/. A step that fails is recorded
with its error and the others still run.

Row 8 is `airflow dags test` of the taxi DAG (.venv-airflow, `make airflow-venv`) for the taxi
re-runs' settings and output root, so its first task finds their last_success.json: the
whole `airflow` process is timed; writing the DAG description and `airflow db migrate` (a fresh
SQLite DB in <output root>/airflow) come before it and are reported apart.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sqlite3
import sys
import time
import traceback
from contextlib import closing
from pathlib import Path
from typing import Callable

from components.ingest import csv_format
from pipeline.bench import breast_cancer, fixed_costs, reference_penguin
from pipeline.bench.process import PipelineRun, measure, pipeline_command, warm_page_cache
from pipeline.config.settings import Settings, settings_args
from pipeline.runners import last_run, warm_reruns, warm_worker

TAXI_FIRST_S = 25.0
PENGUINS_FIRST_S = 15.0
UP_TO_DATE_S = 5.0
CONTRACT_S = 25.0
BREAST_CANCER_TRANSFORM_S = 20.0
# The tabular default model at seed 42 (0.9556 measured; the seed MLP was at 0.948).
TAXI_AUC, TAXI_AUC_TOLERANCE = 0.956, 0.003
# Issue 12's bar for the tabular default. The seed MLP's 1.0 at seed 42 (the speed issue's
# "quality unchanged") does not carry over: the tabular model gets 0.9886 there (87 of 88 eval
# rows), 0.989-1.0 at seeds 1-5; a single row is 0.011 of accuracy.
PENGUINS_ACCURACY = 0.98
REFERENCE_RATIO = 0.2
AIRFLOW_NOOP_S = 60.0
# Issue 26: what the taxi first run may spend logging to MLflow after its last stage, and how
# soon its first line must show; a re-run that changed only --epochs, against the seed-style
# plain Keras script (pipeline/bench/seed_script.py) training as many epochs on the same CSV.
MLFLOW_AFTER_PUSHER_S = 3.0
FIRST_LINE_S = 2.0
EPOCHS_RERUN_RATIO = 3.0
EPOCHS_CHANGED_TO = 29  # the default is 30: a change of --epochs alone, early stopping as before
EPOCHS_CHANGED_COLD = 28  # the same change again, in a process without the warm worker

# The critical expectation the contract-breaking CSV breaks (data/taxi/expectations.json):
# expect_column_values_to_be_between(fare, 0, 771, mostly=0.99). Every 10th fare made negative
# puts 10% of the values out of range where the suite allows 1%.
CONTRACT_COLUMN = "fare"
CONTRACT_EXPECTATION = "expect_column_values_to_be_between"
CONTRACT_EVERY = 10
CONTRACT_MESSAGE = "data contract broken"


# ---- inputs --------------------------------------------------------------------------------

def contract_expectation(suite_file: Path, column: str = CONTRACT_COLUMN,
                         type_: str = CONTRACT_EXPECTATION) -> dict:
    """The suite's critical `type_` expectation on `column`: its kwargs, with mostly (1.0 when
    unset)."""
    suite = json.loads(Path(suite_file).read_text())
    for expectation in suite["expectations"]:
        kwargs = expectation.get("kwargs", {})
        if (expectation.get("type") == type_ and kwargs.get("column") == column
                and expectation.get("meta", {}).get("severity") == "critical"):
            return {"type": type_, **kwargs, "mostly": kwargs.get("mostly", 1.0)}
    raise ValueError(f"{suite_file}: no critical {type_} on column {column!r}")


def _number(x: float) -> str:
    return f"{x:.6g}"


def _below(cell: str, low: float) -> str:
    """A value under `low`: the cell negated when that is enough (a fare of 12.45 becomes
    -12.45), else `low` minus one minus its size."""
    size = abs(float(cell))
    if -size < low:
        return "-" + cell.strip().lstrip("+-")
    return _number(low - 1 - size)


def write_contract_breaking_csv(source: Path, target: Path, expectation: dict,
                                every: int = CONTRACT_EVERY) -> dict:
    """`source` with every `every`-th non-empty value of the expectation's column put below its
    min_value; every other cell as written. Returns what changed and the share out of range
    next to the share the suite allows."""
    column, low = expectation["column"], float(expectation["min_value"])
    with csv_format.inspect(source).open_text() as f:
        header, *rows = list(csv.reader(f))
    index = header.index(column)
    filled = [row for row in rows if row[index].strip()]
    changed = 0
    for i, row in enumerate(filled):
        if i % every == 0:
            row[index] = _below(row[index], low)
            changed += 1
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return {"column": column, "rows": len(rows), "changed": changed,
            "share_out_of_range": changed / len(filled), "allowed": 1 - expectation["mostly"],
            "expectation": f"{expectation['type']}({column}, {expectation['min_value']}, "
                           f"{expectation['max_value']}, mostly={expectation['mostly']})"}


# ---- what a run said ---------------------------------------------------------------------------

_EVALUATOR_LINE = re.compile(r"^\s+Evaluator\s+\S+\s+[\d.]+s\s+(.*)$")


def evaluator_figures(stdout: str) -> dict:
    """AUC, accuracy and blessed from the Evaluator's summary line, e.g.
    `  Evaluator   ran   17.4s  AUC 0.948, accuracy 0.898, blessed yes`."""
    figures: dict = {}
    for line in stdout.splitlines():
        match = _EVALUATOR_LINE.match(line)
        if not match:
            continue
        for item in match[1].split(", "):
            name, _, value = item.strip().rpartition(" ")
            if name in ("AUC", "accuracy"):
                figures[name.lower()] = float(value)
            elif name == "blessed":
                figures["blessed"] = value == "yes"
    return figures


def run_entry(settings: Settings, log: Path, *extra: str, env: dict | None = None) -> dict:
    """`python -m pipeline run` with `settings` (as flags, what differs from the defaults),
    measured as a whole process; its _run_entry."""
    return _run_entry(measure(pipeline_command("run", *settings_args(settings), *extra),
                              check=False, env=env, log=log))


def _run_entry(run: PipelineRun) -> dict:
    error = next((line for line in run.stdout.splitlines() if line.startswith("error: ")), "")
    beam = next((line.split("Beam: ", 1)[1] for line in run.stdout.splitlines()
                 if line.strip().startswith("Beam: ")), "")
    return {"wall_s": run.wall_seconds, "done_in_s": run.done_in_seconds,
            "fixed_costs": fixed_costs.parts(run.line_seconds, run.wall_seconds),
            "first_line_s": fixed_costs.first_line_s(run.line_seconds),
            "returncode": run.returncode, "stages": run.stages, "states": run.states,
            "peak_rss_mb": run.peak_rss_mb, "beam": beam, "error": error,
            "up_to_date": run.returncode == 0 and "Up to date" in run.stdout,
            "epochs_ran": epochs_ran(run.stdout),
            "warm": "  warm worker: TensorFlow" in run.stdout,
            **evaluator_figures(run.stdout)}


def model_quality(settings: Settings) -> dict:
    """The newest Evaluator execution's overall AUC / accuracy and blessing, read from ML
    Metadata and TFMA as the run's summary does (full precision, unlike the summary line)."""
    from pipeline.config.stage_names import EVALUATOR
    from pipeline.console.summary_figures import overall_metrics
    from pipeline.mlmd import queries

    with queries.open_store_context(settings.metadata_path) as store:
        node = queries.node_execution(store, settings.full_pipeline_name, EVALUATOR)
    if node is None:
        return {}
    metrics = overall_metrics(node.outputs["evaluation"][0].uri)
    blessing = node.outputs["blessing"][0].custom_properties.get("blessed")
    quality = {"blessed": bool(blessing and blessing.int_value)}
    if "auc" in metrics:
        quality["auc"] = metrics["auc"]
    if "sparse_categorical_accuracy" in metrics:
        quality["accuracy"] = metrics["sparse_categorical_accuracy"]
    return quality


# ---- a scheduled Airflow run with nothing changed ------------------------------------------------

_CHECK_SAID = re.compile(r"((?:Up to date|Running the stages)[:;] .*)$")


def check_said(output: str) -> str:
    """What the DAG's check_inputs task said (its "Up to date: ..." or "Running the stages: ..."
    line), from the output of `airflow dags test`, where each task's log is echoed."""
    for line in output.splitlines():
        match = _CHECK_SAID.search(line)
        if match:
            return match[1].strip()
    return ""


def airflow_run_states(db: Path, dag_id: str) -> dict:
    """The newest run of `dag_id` in Airflow's SQLite DB: its run id, state and the state of
    each of its tasks (read-only, with the standard library: no Airflow import here)."""
    with closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)) as db_:
        found = db_.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? "
                            "ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
        if found is None:
            return {}
        tasks = db_.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND "
                            "run_id = ? ORDER BY task_id", (dag_id, found[0])).fetchall()
    return {"run_id": found[0], "run_state": found[1],
            "tasks": {task: state or "none" for task, state in tasks}}


def airflow_noop_run(settings: Settings, logs: Path, venv: Path | None = None,
                     logical_date: str | None = None) -> dict:
    """`airflow dags test` of the DAG for `settings`, whose last successful run is already
    recorded: the whole process timed, then the task states read from Airflow's DB. Writing the
    DAG description and `airflow db migrate` come first and are timed apart (one-off set-up)."""
    from pipeline.runners.airflow import scheduler

    venv = Path(venv or scheduler.AIRFLOW_VENV)
    airflow = venv / "bin" / "airflow"
    if not airflow.exists():
        return {"missing": f"no Airflow in {venv.name}/ (make airflow-venv)"}
    if not last_run.record_path(settings).exists():  # every stage would run, for minutes
        return {"error": f"no successful {settings.dataset} run recorded "
                         f"({last_run.RECORD_FILE}): nothing to be up to date with"}
    home = scheduler.airflow_home(settings)
    db = home / "airflow.db"
    # This home's own SQLite DB, whatever the caller's environment names.
    env = scheduler.airflow_env(settings, home, venv) | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}
    spec = measure(pipeline_command("airflow-spec", *settings_args(settings)),
                   log=logs / "airflow_spec.log")
    migrate = measure([str(airflow), "db", "migrate"], env=env, log=logs / "airflow_migrate.log")
    dag_id = settings.full_pipeline_name
    logical_date = logical_date or time.strftime("%Y-%m-%d", time.gmtime())
    command = [str(airflow), "dags", "test", dag_id, logical_date]
    ran = measure(command, check=False, env=env, log=logs / "airflow_dags_test.log")
    entry = {"wall_s": ran.wall_seconds, "returncode": ran.returncode,
             "peak_rss_mb": ran.peak_rss_mb, "dag_id": dag_id, "logical_date": logical_date,
             "command": f"airflow dags test {dag_id} {logical_date}",
             "spec_s": spec.wall_seconds, "migrate_s": migrate.wall_seconds,
             "check_said": check_said(ran.stdout), "check_task": scheduler.CHECK_TASK}
    try:
        entry.update(airflow_run_states(db, dag_id))
    except sqlite3.Error as e:
        entry["states_error"] = f"{type(e).__name__}: {e}"
    if ran.returncode != 0:
        entry["error"] = f"exit {ran.returncode}: " + " ".join(ran.stdout.splitlines()[-3:])
    return entry


_EPOCHS_RAN = re.compile(r"epoch \d+ of (\d+)\)")


def epochs_ran(stdout: str) -> int | None:
    """How many epochs the Trainer ran, from its summary line (`... (epoch 4 of 7)`)."""
    for line in stdout.splitlines():
        if line.strip().startswith("Trainer"):
            match = _EPOCHS_RAN.search(line)
            if match:
                return int(match[1])
    return None


def seed_script_run(settings: Settings, epochs_run: dict | None, logs: Path) -> dict:
    """pipeline/bench/seed_script.py on the same CSV, as many epochs as the --epochs re-run's
    Trainer ran (early stopping included), timed as a whole process."""
    epochs = (epochs_run or {}).get("epochs_ran")
    if not epochs:
        return {"error": "the --epochs re-run did not say how many epochs its Trainer ran"}
    command = [sys.executable, "-m", "pipeline.bench.seed_script", "--dataset",
               settings.dataset, "--data-root", str(settings.data_root), "--epochs", str(epochs)]
    ran = measure(command, check=False, log=logs / "seed_script.log")
    return {"wall_s": ran.wall_seconds, "returncode": ran.returncode, "epochs": epochs,
            "said": ran.stdout.strip().splitlines()[-1] if ran.stdout.strip() else ""}


# ---- the runs ----------------------------------------------------------------------------------

def run_targets(root: Path, say: Callable[[str], None], results: dict | None = None,
                cores: int | None = None) -> dict:
    """Every target's measurements, into `results` (filled as they come, so that `say` can
    save them) for the report to render (see `rows`)."""
    cores = cores or os.cpu_count() or 1
    root = Path(root).resolve()
    shutil.rmtree(root, ignore_errors=True)  # first runs: nothing cached from an earlier bench
    logs = root / "logs"
    results = {} if results is None else results
    results["cores"] = cores
    # One output root, fresh, for the first runs: each dataset gets its own folder in it.
    taxi = Settings(dataset="taxi", output_root=root / "runs")
    penguins = taxi.replace(dataset="penguins")
    bc_data = root / "data"
    bc = taxi.replace(dataset=breast_cancer.NAME, data_root=bc_data)
    reference_root = root / "reference"

    def step(key: str, text: str, fn: Callable[[], dict]) -> None:
        say(text)
        try:
            results[key] = fn()
        except Exception as e:  # noqa: BLE001 - one failed target must not lose the others
            results[key] = {"error": f"{type(e).__name__}: {e}"[-2000:]}
            say(f"{key} failed: {type(e).__name__}: {str(e)[-500:]}")
            traceback.print_exc()

    # A run or score leaves a warm worker for the next one on its output root
    # (pipeline/runners/warm_reruns.py). The taxi runs measure that, as a user re-running gets it;
    # the other first runs are a fresh machine's, and leave none: its imports in the background
    # would slow the next measurement (TFX's reference pipeline among them).
    no_worker = dict(os.environ, **{warm_reruns.ENV_SWITCH: "0"})
    warm = dict(os.environ, **{warm_reruns.ENV_SWITCH: "1"})

    def run(settings: Settings, log: str, *extra: str, env: dict | None = None) -> dict:
        return run_entry(settings, logs / f"{log}.log", *extra, env=env)

    def contract() -> dict:
        spec = taxi.load_spec()
        from components.contract.suite_loading import suite_path

        expectation = contract_expectation(suite_path(spec))
        csv_path = root / "contract_data" / "data.csv"
        variant = write_contract_breaking_csv(spec.csv_path, csv_path, expectation)
        entry = run(taxi.replace(output_root=root / "contract"), "contract", "--csv",
                    str(csv_path), env=no_worker)
        # The error names the file first: `error: <csv>: data contract broken: ...`.
        return entry | {"variant": variant, "refused": entry["error"].startswith(
            f"error: {csv_path}: {CONTRACT_MESSAGE}")}

    def reference() -> dict:
        converted = reference_penguin.to_reference_csv(
            penguins.load_spec().csv_path, reference_penguin.Paths(reference_root).csv)
        command = [sys.executable, "-m", "pipeline.bench.reference_penguin", "run", "--root",
                   str(reference_root), "--workers", str(cores)]
        ran = measure(command, check=False, env=reference_penguin.run_environment(reference_root),
                      log=logs / "reference.log")
        # TFX's packages of itself and of the module file (tens of MB), left in its TMPDIR.
        shutil.rmtree(reference_penguin.Paths(reference_root).tmp, ignore_errors=True)
        return {"wall_s": ran.wall_seconds, "returncode": ran.returncode, "csv": converted,
                "peak_rss_mb": ran.peak_rss_mb, "command": " ".join(command[1:])}

    def breast_cancer_run() -> dict:
        from components.contract.suite_loading import SUITE_FILE

        breast_cancer.write_dataset(bc_data)
        spec = bc.load_spec()
        drafts = bc.replace(output_root=root / "drafts")
        args = ["--dataset", bc.dataset, "--data-root", str(bc_data), "--output-root",
                str(drafts.output_root)]
        schema = measure(pipeline_command("schema", *args), log=logs / "bc_schema.log")
        suite = measure(pipeline_command("expectations", *args), log=logs / "bc_suite.log")
        spec.schema_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(drafts.output_dir / "schema_draft" / "schema.pbtxt", spec.schema_path)
        shutil.copyfile(drafts.output_dir / "expectations_draft" / SUITE_FILE,
                        spec.directory / SUITE_FILE)
        entry = run(bc, "breast_cancer", env=no_worker)
        return entry | {"schema_draft_s": schema.wall_seconds,
                        "suite_draft_s": suite.wall_seconds,
                        "columns": len(spec.features), "rows": _data_rows(spec.csv_path)}

    def quality(key: str, settings: Settings) -> None:
        """The run's model quality from ML Metadata / TFMA, read before a later run of the
        same dataset makes another Evaluator execution the newest."""
        if "wall_s" in results.get(key, {}):
            try:
                results[key].update(model_quality(settings))
            except Exception as e:  # noqa: BLE001 - the summary line's figures stay
                results[key]["quality_error"] = f"{type(e).__name__}: {e}"

    say("targets: reading a run's imports into the page cache first (untimed)")
    results["page_cache_warm_up_s"] = round(warm_page_cache(), 1)
    step("taxi_first", "targets: taxi, first run", lambda: run(taxi, "taxi_first", env=warm))
    quality("taxi_first", taxi)
    step("taxi_rerun", "targets: taxi, re-run with nothing changed",
         lambda: run(taxi, "taxi_rerun", env=warm))
    step("taxi_force", "targets: taxi, --force re-run",
         lambda: run(taxi, "taxi_force", "--force", env=warm))
    # Right after the taxi runs, which recorded last_success.json for this output root.
    step("airflow_noop", "targets: Airflow, the taxi DAG with nothing changed (airflow dags test)",
         lambda: airflow_noop_run(taxi, logs))
    # After the runs that need the first run's settings to be the last successful ones.
    step("taxi_epochs", f"targets: taxi, re-run with only --epochs changed "
                        f"(to {EPOCHS_CHANGED_TO})",
         lambda: run(taxi, "taxi_epochs", "--epochs", str(EPOCHS_CHANGED_TO), env=warm))
    step("taxi_epochs_cold", f"targets: taxi, the same without the warm worker (--epochs "
                             f"{EPOCHS_CHANGED_COLD})",
         lambda: run(taxi, "taxi_epochs_cold", "--epochs", str(EPOCHS_CHANGED_COLD),
                     env=no_worker))
    warm_worker.stop(taxi.output_root, wait_s=30)  # nothing of it left for the baselines
    step("seed_script", "targets: the seed-style plain Keras script, as many epochs",
         lambda: seed_script_run(taxi, results.get("taxi_epochs"), logs))
    step("contract", "targets: a taxi CSV breaking the data contract", contract)
    step("penguins_first", "targets: penguins, first run",
         lambda: run(penguins, "penguins_first", env=no_worker))
    step("reference", "targets: TFX's reference penguin pipeline, same data", reference)
    step("breast_cancer", "targets: breast cancer, schema and suite drafted, first run",
         breast_cancer_run)

    for key, settings in (("penguins_first", penguins), ("breast_cancer", bc)):
        quality(key, settings)
    if results.get("reference", {}).get("returncode") == 0:
        try:
            results["reference"].update(reference_penguin.summarize(reference_root))
        except Exception as e:  # noqa: BLE001
            results["reference"]["quality_error"] = f"{type(e).__name__}: {e}"
    return results


def _data_rows(path: Path) -> int:
    with csv_format.inspect(path).open_text() as f:
        return sum(1 for _ in f) - 1
