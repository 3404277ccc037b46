"""MLflow records of a --tune run: each Tuner trial a child run of the Tuner's stage run, the
chosen hyperparameters on the pipeline's run.

The Tuner's executor (components/train/tuner_search.py) writes every trial, with its per-epoch
metrics, beside TFX's tuner_results.json; TFX writes the chosen set as best_hyperparameters.txt
(a KerasTuner HyperParameters config). Both are read here from the execution's artifacts.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

from pipeline.mlmd import queries
from pipeline.tracking import run_logging

TRIALS_FILE = "trials.json"  # components/train/tuner_search.py writes it
BEST_FILE = "best_hyperparameters.txt"  # TFX's Tuner executor writes it
TUNED_PREFIX = "tuned."
TAG_TRIAL = "tuner.trial_id"


def _read_json(folder: str | None, name: str) -> Any:
    if not folder or not os.path.exists(os.path.join(folder, name)):
        return None
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def chosen_hyperparameters(node: queries.NodeExecution) -> dict[str, Any]:
    """The set the Tuner chose (what the Trainer trained with), KerasTuner's own bookkeeping
    (Hyperband's `tuner/...` entries) left out; {} if there is none."""
    best = _read_json(node.output_uri("best_hyperparameters"), BEST_FILE) or {}
    return {k: v for k, v in best.get("values", {}).items() if not k.startswith("tuner/")}


def trials(node: queries.NodeExecution) -> list[dict[str, Any]]:
    return _read_json(node.output_uri("tuner_results"), TRIALS_FILE) or []


def log_trials(client, experiment: str, stage_run: str, tags: dict[str, str],
               node: queries.NodeExecution) -> list[str]:
    """One child run of `stage_run` per trial: its hyperparameters as params, its per-epoch
    metrics as series (step = epoch), its score (best val_loss) as `score`. Returns their ids."""
    from mlflow.entities import Metric, Param, RunTag

    ids = []
    now = int(time.time() * 1000)
    for trial in trials(node):
        run = client.create_run(
            experiment, run_name=f"trial {trial['trial_id']}",
            tags={**tags, "mlflow.parentRunId": stage_run, TAG_TRIAL: trial["trial_id"],
                  "tuner.status": trial["status"]})
        run_id = run.info.run_id
        metrics = [Metric(name, float(v), now, step)
                   for name, values in trial["metrics"].items()
                   for step, v in enumerate(values, start=1)]
        if trial["score"] is not None:
            metrics.append(Metric("score", trial["score"], now, 0))
        params = [Param(k, str(v)) for k, v in trial["values"].items()]
        client.log_batch(run_id, metrics=metrics[:1000], params=params,
                         tags=[RunTag("tuner.objective", "val_loss")])
        status = "FINISHED" if trial["status"].endswith("COMPLETED") else "FAILED"
        client.set_terminated(run_id, status)
        ids.append(run_id)
    return ids


def tuned_params(node: queries.NodeExecution) -> dict[str, str]:
    """The chosen set as pipeline-run params: `tuned.<setting>`."""
    return {TUNED_PREFIX + k: str(v) for k, v in chosen_hyperparameters(node).items()}


def log_tuner(client, experiment: str, parent: str, stage_run: str,
              node: queries.NodeExecution, tfx_run: str, source: dict[str, str]) -> bool:
    """--tune: each trial a child run of the Tuner's run (when it ran, not when cached), the
    chosen set on the pipeline's run. False when they could not be recorded: the Tuner's run
    then ends FAILED with a tracking_error tag, and the stages after it are still logged."""
    try:
        if node.execution.last_known_state == queries.COMPLETE:
            log_trials(client, experiment, stage_run,
                       {run_logging.TAG_PIPELINE_RUN: tfx_run, **source}, node)
        run_logging.log(client, parent, params=tuned_params(node))
    except Exception as e:  # noqa: BLE001 - the trials must not lose the stages after them
        run_logging.recording_failed(client, stage_run, "the Tuner's trials", e)
        client.set_terminated(stage_run, run_logging.FAILED)
        return False
    return True
