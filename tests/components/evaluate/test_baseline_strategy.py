"""The Evaluator's baseline (components/evaluate/baseline_strategy.py): the latest blessed model
other than the candidate that predicts what the candidate predicts. Models and blessings are
recorded in a real ML Metadata store as TFX records them (a Trainer execution with the spec in
its custom_config, the model as its output)."""
from __future__ import annotations

import json

from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from components.evaluate import model_target
from components.evaluate.baseline_strategy import (
    BLESSING,
    CANDIDATE,
    MODEL,
    LatestBlessedOtherModelStrategy,
)
from mlmd_records import open_store

SPECIES = {"label": "species", "task": "multiclass", "classes": ["Adelie", "Chinstrap", "Gentoo"]}
ISLAND = {"label": "island", "task": "multiclass", "classes": ["Biscoe", "Dream", "Torgersen"]}


class _Recorder:
    def __init__(self, store):
        self.store = store
        self.trainer = store.put_execution_type(metadata_store_pb2.ExecutionType(name="x.Trainer"))
        self.model_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Model"))

    def model(self, target: dict | None) -> standard_artifacts.Model:
        """A model its Trainer produced; target None: a Trainer config without the spec."""
        execution = metadata_store_pb2.Execution(type_id=self.trainer)
        config = {"code_fingerprint": "x", **({"spec": {**target, "features": []}}
                                              if target else {})}
        execution.custom_properties[model_target.CONFIG_PROPERTY].string_value = json.dumps(config)
        [artifact_id] = self.store.put_artifacts([metadata_store_pb2.Artifact(
            type_id=self.model_type, uri=f"/m/{len(self.store.get_artifacts())}")])
        # put_execution writes the artifact it is given: the stored one, uri included.
        [stored] = self.store.get_artifacts_by_id([artifact_id])
        self.store.put_execution(execution, [(
            stored, metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT))], [])
        model = standard_artifacts.Model()
        model.id = artifact_id
        return model


_BLESSING_IDS = iter(range(1000, 2000))


def _blessing(model, blessed: bool = True) -> standard_artifacts.ModelBlessing:
    """A blessing as the Evaluator records it; later calls get larger ids, as in the store."""
    blessing = standard_artifacts.ModelBlessing()
    blessing.id = next(_BLESSING_IDS)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _baseline(store, candidate, models, blessings):
    resolved = LatestBlessedOtherModelStrategy().resolve_artifacts(
        store, {CANDIDATE: [candidate], MODEL: models, BLESSING: blessings})
    return [m.id for m in resolved[MODEL]]


def test_a_blessed_model_of_another_label_is_no_baseline(tmp_path):
    store = open_store(tmp_path / "metadata.sqlite")
    recorder = _Recorder(store)
    island_1 = recorder.model(ISLAND)
    species = recorder.model(SPECIES)  # the champion after `init --force --label species`
    candidate = recorder.model(ISLAND)  # `init --force --label island` again
    models, blessings = [island_1, species, candidate], [_blessing(island_1), _blessing(species)]
    # The latest blessed model predicts species: skipped for the earlier island model.
    assert _baseline(store, candidate, models, blessings) == [island_1.id]
    # With no blessed model of its label there is no baseline (a first run's verdict).
    assert _baseline(store, candidate, models, [_blessing(species)]) == []
    # The same target: the newest blessed one, never the candidate itself.
    newer = recorder.model(ISLAND)
    assert _baseline(store, newer, models + [newer],
                     blessings + [_blessing(candidate), _blessing(newer)]) == [candidate.id]
    # Not blessed: not a baseline, whatever it predicts.
    assert _baseline(store, newer, [island_1, newer], [_blessing(island_1, False)]) == []


def test_the_model_blessed_last_is_the_baseline_not_the_newest_model(tmp_path):
    # A run whose Trainer came from cache blessed an older model again (it became champion):
    # the next run is judged against it, not against the newer model blessed before it.
    store = open_store(tmp_path / "metadata.sqlite")
    recorder = _Recorder(store)
    older, newer, candidate = (recorder.model(SPECIES) for _ in range(3))
    blessings = [_blessing(older), _blessing(newer), _blessing(older)]
    assert _baseline(store, candidate, [older, newer, candidate], blessings) == [older.id]
    # A later blessing that blessed nothing (the model missed a gate) does not count.
    blessings.append(_blessing(newer, blessed=False))
    assert _baseline(store, candidate, [older, newer, candidate], blessings) == [older.id]


def test_a_model_whose_trainer_config_names_no_spec_stays_a_baseline(tmp_path):
    store = open_store(tmp_path / "metadata.sqlite")
    recorder = _Recorder(store)
    older = recorder.model(None)
    candidate = recorder.model(SPECIES)
    assert model_target.trained_target(store, older.id) is None
    assert model_target.trained_target(store, candidate.id) == SPECIES
    assert _baseline(store, candidate, [older, candidate], [_blessing(older)]) == [older.id]


def test_scoring_refuses_a_champion_that_predicts_another_label_than_the_spec(tmp_path):
    import pytest

    from pipeline.config.settings import Settings
    from pipeline.mlmd.champion import ChampionNotFound
    from pipeline.tracking import scoring_runs

    store = open_store(tmp_path / "metadata.sqlite")
    recorder = _Recorder(store)
    island, species = recorder.model(ISLAND), recorder.model(SPECIES)
    uri = {m.id: a.uri for m in (island, species) for a in store.get_artifacts_by_id([m.id])}
    settings = Settings(dataset="penguins")  # its spec predicts species
    scoring_runs._check_target(store, uri[species.id], settings, "v2")  # the same: no error
    with pytest.raises(ChampionNotFound) as refused:
        scoring_runs._check_target(store, uri[island.id], settings, "csv2model-penguins version 1")
    assert str(refused.value) == (
        "the champion (csv2model-penguins version 1) predicts 'island' (multiclass: Biscoe, "
        "Dream, Torgersen), the spec now 'species' (multiclass: Adelie, Chinstrap, Gentoo): "
        "train a model for it with `make pipeline DATASET=penguins` first (a blessed one "
        "becomes champion)")
