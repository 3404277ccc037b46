"""The spec's optional `gates:` block: parsed and checked in dataset_spec, resolved with the
command line first in Settings.gate, and what the Evaluator's eval config gates on."""
from __future__ import annotations

import json
import shutil

import pytest

from pipeline.config.dataset_spec import Gates, SpecError, load_spec
from pipeline.config.settings import GATE_DEFAULTS, Settings, from_args


def _spec_with(tmp_path, dataset: str, gates_yaml: str):
    """The shipped spec of `dataset` with its gates block replaced by gates_yaml ('' for none)."""
    source = Settings(dataset=dataset).spec_path
    folder = tmp_path / dataset
    folder.mkdir()
    lines, skipping = [], False
    for line in source.read_text().splitlines():
        if line.startswith("gates:"):
            skipping = True
            continue
        if skipping and line.startswith("  "):
            continue
        skipping = False
        lines.append(line)
    (folder / "spec.yaml").write_text("\n".join(lines) + "\n" + gates_yaml)
    shutil.copyfile(source.parent / "data.csv", folder / "data.csv")
    return Settings(dataset=dataset, data_root=tmp_path)


def test_shipped_specs_keep_the_gates_they_had_as_global_defaults():
    taxi = Settings(dataset="taxi").load_spec()
    penguins = Settings(dataset="penguins").load_spec()
    assert taxi.gates == Gates(min_auc=0.93, max_metric_drop=0.0)
    assert penguins.gates == Gates(min_accuracy=0.9, max_metric_drop=0.0)


def test_command_line_wins_then_spec_then_default(tmp_path):
    settings = _spec_with(tmp_path, "taxi", "gates:\n  min_auc: 0.71\n")
    spec = settings.load_spec()
    assert settings.gate(spec, "min_auc") == (
        "min_auc", 0.71, "gates.min_auc in spec.yaml")
    assert settings.gate(spec, "max_metric_drop") == (
        "max_metric_drop", GATE_DEFAULTS["max_metric_drop"], "default")
    flagged = from_args(["--dataset", "taxi", "--data-root", str(tmp_path), "--min-auc", "0.6"])
    assert flagged.gate(spec, "min_auc") == ("min_auc", 0.6, "--min-auc")
    assert flagged.gate(spec, "min_auc").where == "gates.min_auc in spec.yaml, or --min-auc"


def test_a_spec_without_gates_takes_the_defaults(tmp_path):
    settings = _spec_with(tmp_path, "penguins", "")
    spec = settings.load_spec()
    assert spec.gates == Gates()
    assert settings.gate(spec, "min_accuracy").value == GATE_DEFAULTS["min_accuracy"]


@pytest.mark.parametrize("gates_yaml, message", [
    ("gates:\n  min_accuracy: 0.8\n", "unknown key(s) ['min_accuracy'] for task 'binary'"),
    ("gates:\n  min_auc: 1.5\n", "gates.min_auc must be a number from 0 to 1, got 1.5"),
    ("gates:\n  min_auc: yes\n", "gates.min_auc must be a number from 0 to 1, got True"),
    ("gates: 0.8\n", "'gates' must be a mapping such as {min_auc: 0.8}"),
])
def test_bad_gates_are_refused_naming_the_key(tmp_path, gates_yaml, message):
    settings = _spec_with(tmp_path, "taxi", gates_yaml)
    with pytest.raises(SpecError) as e:
        load_spec(settings.spec_path)
    assert message in str(e.value) and str(settings.spec_path) in str(e.value)


def test_gates_stay_out_of_the_config_transform_and_trainer_cache_on(tmp_path):
    settings = _spec_with(tmp_path, "taxi", "gates:\n  min_auc: 0.5\n")
    changed = settings.load_spec()
    shipped = Settings(dataset="taxi").load_spec()
    assert changed.to_config() == shipped.to_config()
    assert changed.fingerprint() == shipped.fingerprint()


def test_eval_config_gates_on_the_resolved_values(tmp_path):
    from google.protobuf import json_format

    from pipeline.definition.eval_config import make_eval_config
    from pipeline.tracking import stage_records

    settings = _spec_with(tmp_path, "penguins",
                          "gates:\n  min_accuracy: 0.42\n  max_metric_drop: 0.01\n")
    config = make_eval_config(settings.load_spec(), settings)
    params = stage_records.eval_thresholds(
        json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True)))
    assert params == {"threshold.sparse_categorical_accuracy.overall.min": 0.42,
                      "threshold.sparse_categorical_accuracy.overall.max_drop":
                          pytest.approx(0.01)}
    flagged = settings.replace(min_accuracy=0.77)
    config = make_eval_config(flagged.load_spec(), flagged)
    params = stage_records.eval_thresholds(
        json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True)))
    assert params["threshold.sparse_categorical_accuracy.overall.min"] == 0.77
