"""End to end: an edit to a module only the Trainer's code imports re-runs the Trainer and the
stages after it, while the Transform and every stage before it come from TFX's cache.

The penguins run twice (up to the Evaluator) from a copy of the code in a temp dir, the copy's
components/train/model.py edited in between; what ran is read from ML Metadata."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.mlmd import queries

pytestmark = pytest.mark.e2e

EDITED = "components.train.model"
# The stages before the Trainer that execute (resolvers look artifacts up instead).
BEFORE_TRAINER = [stage_names.EXAMPLE_GEN, stage_names.SCHEMA_IMPORTER,
                  stage_names.EXPECTATIONS_VALIDATOR, stage_names.EXPECTATIONS_GATE,
                  stage_names.STATISTICS_GEN, stage_names.EXAMPLE_VALIDATOR,
                  stage_names.ANOMALIES_GATE, stage_names.TRANSFORM]
RE_RUN = [stage_names.TRAINER, stage_names.EVALUATOR]


def _run(root, out) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(root)  # the copy's code, also for anything TFX imports by path
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--dataset", "penguins", "--output-root",
         str(out), "--epochs", "3", "--min-accuracy", "0", "--until", stage_names.EVALUATOR],
        cwd=root, env=env, capture_output=True, text=True, timeout=900)


def _states(settings: Settings, nodes: list[str]) -> dict[str, list[str]]:
    with queries.open_store_context(settings.metadata_path) as store:
        states = {}
        for node in nodes:
            context = store.get_context_by_type_and_name(
                "node", f"{settings.full_pipeline_name}.{node}")
            executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
            states[node] = [queries.STATE_NAMES[e.last_known_state] for e in executions]
        return states


def test_an_edit_to_trainer_only_code_re_runs_the_trainer_and_after_not_before(tmp_path):
    # The module is the Trainer's alone: no stage before it imports it.
    assert EDITED in builder.stage_modules(stage_names.TRAINER)
    assert not [n for n in BEFORE_TRAINER if EDITED in builder.stage_modules(n)]
    root, out = tmp_path / "repo", tmp_path / "out"
    for folder in ("pipeline", "components"):
        shutil.copytree(REPO / folder, root / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "data" / "penguins", root / "data" / "penguins")
    first = _run(root, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    model = root / "components" / "train" / "model.py"
    model.write_text(model.read_text() + "\n# an edit only the Trainer's code sees\n")
    second = _run(root, out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    settings = Settings(dataset="penguins", output_root=out)
    states = _states(settings, BEFORE_TRAINER + RE_RUN)
    assert {n: states[n] for n in BEFORE_TRAINER} == {n: ["ran", "cached"] for n in BEFORE_TRAINER}
    assert {n: states[n] for n in RE_RUN} == {n: ["ran", "ran"] for n in RE_RUN}
    for line in second.stdout.splitlines():  # the summary says the same
        words = line.split()
        if words[:1] == [stage_names.TRANSFORM] or words[:1] == [stage_names.TRAINER]:
            assert words[1] == ("cached" if words[0] == stage_names.TRANSFORM else "ran"), line
