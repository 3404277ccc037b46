"""Each Airflow task imports what its stage uses (pipeline/runners/stage_imports.py): a light
stage's task loads TFX's launcher and its executor without TensorFlow, Beam or TFDV."""
from __future__ import annotations

import json
import subprocess
import sys

from pipeline.runners import stage_imports

# What a gate's or a resolver's task imports, as run-node does, under the blocker.
_PROBE = """
import json, sys
from pipeline.runners import stage_imports
with stage_imports.only_what_it_needs(sys.argv[1]) as blocked:
    import tfx.orchestration.portable.launcher  # the launcher every task runs
    import components.contract.gates, components.score.drift, components.evaluate.baseline_strategy
    from pipeline.runners import single_node
    from pipeline.console import stage_summary
    try:
        import tensorflow
        refused = ""
    except ModuleNotFoundError as e:
        refused = str(e)
print(json.dumps({"blocked": blocked, "refused": refused,
                  "heavy_loaded": sorted(m for m in stage_imports.HEAVY if m in sys.modules)}))
"""


def probe(task: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, task], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_gate_task_loads_the_launcher_and_its_executor_without_the_heavy_libraries():
    seen = probe("AnomaliesGate")
    assert seen["heavy_loaded"] == []
    assert set(seen["blocked"]) == set(stage_imports.HEAVY)
    # Asked for anyway, it says which task refused it and where that is decided.
    assert "the task AnomaliesGate does not load tensorflow" in seen["refused"]
    assert stage_imports.WHERE in seen["refused"]


def test_stages_that_use_the_libraries_are_not_blocked():
    for task in ("Transform", "Trainer", "StatisticsGen", "Evaluator", "track-run"):
        assert stage_imports.blocked_for(task) == ()
    assert set(stage_imports.LIGHT_STAGES) >= {"ExpectationsGate", "AnomaliesGate", "DriftGate"}
