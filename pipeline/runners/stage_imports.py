"""What one orchestrated task may import: each Airflow task pays only for what its stage uses.

Every Airflow task is a new process. TFX's launcher imports TensorFlow (for its file system
plugin) and Apache Beam (for its Beam executor operator) whether or not the stage needs them:
~4 s of a task that then runs a gate in milliseconds. Both imports are optional in TFX (it falls
back to the local file system and to no Beam when they are missing), so a task whose stage
needs neither blocks them: `import tensorflow` raises ModuleNotFoundError in that process.

Blocking rather than hoping: if a light stage's code ever starts to need a blocked library, its
task fails at once naming the module and this file, instead of silently paying seconds again.
The lists are checked by running each light stage blocked (tests/runners/test_stage_imports.py).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import sys
from typing import Iterator

from pipeline.config.stage_names import (
    ANOMALIES_GATE,
    BASELINE_RESOLVER,
    DRIFT_GATE,
    EXPECTATIONS_GATE,
    PREVIOUS_STATISTICS_RESOLVER,
)

# Libraries that cost seconds to import and that only some stages use.
HEAVY = ("tensorflow", "apache_beam", "tensorflow_transform", "tensorflow_model_analysis",
         "tensorflow_data_validation", "tfx_bsl", "tf_keras", "keras", "great_expectations",
         "mlflow")

# Stages whose executor (or resolver) is plain Python over ML Metadata and small files: the
# gates read their validator's report, the resolvers query ML Metadata.
LIGHT_STAGES = (EXPECTATIONS_GATE, ANOMALIES_GATE, DRIFT_GATE, PREVIOUS_STATISTICS_RESOLVER,
                BASELINE_RESOLVER)

# Not the tracking task (track-run): it builds every stage's MLflow record after the run, and
# those read TFDV's statistics, TFMA's results and the Trainer's TensorFlow event files, so it
# needs them all (measured: blocked, three stage records failed). It gets light only when the
# records are made by the stages' own tasks, which have those libraries loaded anyway.

WHERE = "pipeline/runners/stage_imports.py"


def blocked_for(task: str) -> tuple[str, ...]:
    """The libraries task `task` (a stage's node id, or a command) must not import."""
    return HEAVY if task in LIGHT_STAGES else ()


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, task: str, blocked: tuple[str, ...]):
        self.task = task
        self.blocked = blocked

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in self.blocked:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: the task {self.task} does not load "
                f"{fullname.split('.', 1)[0]} ({WHERE})", name=fullname)
        return None


@contextlib.contextmanager
def only_what_it_needs(task: str) -> Iterator[tuple[str, ...]]:
    """Block the libraries `task` does not need for the block; yields what is blocked. A
    library already imported stays (nothing can be un-imported)."""
    blocked = tuple(m for m in blocked_for(task) if m not in sys.modules)
    if not blocked:
        yield ()
        return
    blocker = _Blocker(task, blocked)
    sys.meta_path.insert(0, blocker)
    try:
        yield blocked
    finally:
        sys.meta_path.remove(blocker)
