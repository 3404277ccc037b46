"""Baseline for the Evaluator's change threshold: the model blessed last (the champion), other
than the candidate.

TFX's LatestBlessedModelStrategy returns the candidate itself when the Trainer was served from
cache (its model was blessed last run). The Evaluator then sees a new baseline input and runs
again, so a second run with nothing changed is not fully cached, and a model gets compared with
itself. Excluding the candidate keeps the Evaluator's inputs identical between such runs.

A blessed model that predicts another label, task or classes than the candidate (the spec was
re-drafted with `init --force --label ...`) is skipped too: it is no baseline for this model
(components/evaluate/model_target.py).
"""
from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common.resolver import ResolverStrategy

from components.evaluate import model_target

CANDIDATE, MODEL, BLESSING = "candidate", "model", "model_blessing"


class LatestBlessedOtherModelStrategy(ResolverStrategy):
    def resolve_artifacts(
        self, store, input_dict: Dict[str, List[types.Artifact]]
    ) -> Optional[Dict[str, List[types.Artifact]]]:
        candidate_ids = {a.id for a in input_dict.get(CANDIDATE, [])}
        models = {model.id: model for model in input_dict.get(MODEL, [])}
        result: Dict[str, List[types.Artifact]] = {CANDIDATE: [], MODEL: [], BLESSING: []}
        wanted = model_target.trained_target(store, min(candidate_ids)) if candidate_ids else None
        # The latest blessing first, not the latest model: a run whose Trainer came from cache
        # blesses an older model again (it becomes champion), and the next run must be judged
        # against it, not against a newer model blessed before it.
        for blessing in sorted(input_dict.get(BLESSING, []), key=lambda a: a.id, reverse=True):
            model = models.get(blessing.get_int_custom_property("current_model_id"))
            if blessing.get_int_custom_property("blessed") != 1 or model is None \
                    or model.id in candidate_ids:
                continue
            if model_target.mismatch(model_target.trained_target(store, model.id), wanted):
                continue  # it predicts another label, task or classes: no baseline for this one
            result[MODEL] = [model]
            result[BLESSING] = [blessing]
            break
        return result
