"""What waits for the scoring pipeline's gates (pipeline/definition/builder.py): the Evaluator
does, the BulkInferrer and the PredictionsWriter do not (they write into the pipeline root beside
the checks; scores/ gets the file only after the whole run: test_scoring_e2e.py checks that a
refused file leaves nothing there)."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import stage_names as names
from pipeline.config.settings import Settings
from pipeline.definition.builder import create_scoring_pipeline
from pipeline.mlmd.champion import Champion

GATES = {names.EXPECTATIONS_GATE, names.ANOMALIES_GATE, names.DRIFT_GATE}


def _upstream(settings: Settings) -> dict[str, set[str]]:
    """Each node's transitive upstream nodes, by id."""
    spec = settings.load_spec()
    champion = Champion(name="m", version="1", model_uri="/nowhere/model",
                        statistics_uri="/nowhere/statistics", training_run="r")
    pipeline = create_scoring_pipeline(settings, spec, champion, write_files=False)
    direct = {c.id: {u.id for u in c.upstream_nodes} for c in pipeline.components}

    def closure(node: str) -> set[str]:
        seen, todo = set(), list(direct[node])
        while todo:
            up = todo.pop()
            if up not in seen:
                seen.add(up)
                todo += direct[up]
        return seen
    return {node: closure(node) for node in direct}


@pytest.mark.parametrize("labelled", [False, True])
def test_the_inference_and_the_scored_file_do_not_wait_for_the_gates(tmp_path, labelled):
    frame = pd.read_csv(Settings(dataset="penguins").load_spec().csv_path)
    csv = tmp_path / "new.csv"
    (frame if labelled else frame.drop(columns=["species"])).to_csv(csv, index=False)
    upstream = _upstream(Settings(dataset="penguins", output_root=tmp_path, csv=csv))
    assert not upstream[names.BULK_INFERRER] & GATES
    assert not upstream[names.PREDICTIONS_WRITER] & GATES
    assert names.BULK_INFERRER in upstream[names.PREDICTIONS_WRITER]
    if labelled:
        assert upstream[names.EVALUATOR] >= GATES  # nothing evaluated on a refused file
    else:
        assert names.EVALUATOR not in upstream
