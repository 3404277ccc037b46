"""What makes TFX re-run a stage instead of serving its cache: an edited schema gets a new path
(ImportSchemaGen caches on the path), an edited module a new code_fingerprint in the stage's
properties (TFX does not fingerprint code referenced by dotted path). Pipelines are only built
here (write_files=False writes nothing), not run."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys

from conftest import DATA

from pipeline.config.dataset_spec import load_spec
from pipeline.config.settings import Settings
from pipeline.definition import builder


def _nodes(settings, spec, write_files=False):
    pipeline = builder.create_pipeline(settings, spec, write_files=write_files)
    return {c.id: c for c in pipeline.components}


def _penguins_copy(tmp_path):
    folder = tmp_path / "penguins"
    shutil.copytree(DATA / "penguins", folder)
    return load_spec(folder / "spec.yaml")


def test_an_edited_schema_is_imported_from_a_new_path(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path / "out")
    spec = _penguins_copy(tmp_path)
    before = _nodes(settings, spec)[builder.SCHEMA_IMPORTER].exec_properties["schema_file"]
    assert before == _nodes(settings, spec)[builder.SCHEMA_IMPORTER].exec_properties[
        "schema_file"]  # same bytes, same path: the cache answers
    with spec.schema_path.open("a") as f:
        f.write("\n# reviewed\n")
    copied = _nodes(settings, spec, write_files=True)[builder.SCHEMA_IMPORTER]
    after = copied.exec_properties["schema_file"]
    assert after != before
    assert open(after, "rb").read() == spec.schema_path.read_bytes()  # what a run imports


def test_an_edited_module_changes_the_fingerprint_its_stages_cache_on(tmp_path, monkeypatch):
    module = tmp_path / "probe_module.py"
    module.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = builder.code_fingerprint("probe_module")
    module.write_text("X = 2\n")
    assert builder.code_fingerprint("probe_module") != first
    sys.modules.pop("probe_module", None)

    settings = Settings(dataset="penguins", output_root=tmp_path / "out")
    nodes = _nodes(settings, settings.load_spec())
    for node, modules in ((builder.TRANSFORM, builder.TRANSFORM_MODULES),
                          (builder.TRAINER, builder.TRAINER_MODULES)):
        config = json.loads(nodes[node].exec_properties["custom_config"])
        assert config["code_fingerprint"] == builder.code_fingerprint(*modules), node
    assert nodes[builder.EXPECTATIONS_VALIDATOR].exec_properties["code_fingerprint"] == \
        builder.code_fingerprint(*builder.EXPECTATIONS_MODULES)
    # The Evaluator loads components/evaluate/evaluator_module.py (and what it imports) by module_path: their
    # fingerprint rides in the eval config, the Evaluator's only property that can carry it.
    metrics = [m for spec in json.loads(nodes[builder.EVALUATOR].exec_properties["eval_config"])[
        "metrics_specs"] for m in spec["metrics"]]
    configs = [json.loads(m["config"]) for m in metrics if m.get("module") ==
               builder.EVALUATOR_MODULE and m["class_name"] == "ArgmaxAccuracy"]
    assert configs and {c["code_fingerprint"] for c in configs} == {
        builder.code_fingerprint(*builder.EVALUATOR_MODULES)}
    assert {"components.evaluate.row_batch_combiners", "components.evaluate.slice_groups",
            "components.evaluate.positional_signatures"} <= set(builder.EVALUATOR_MODULES)


def test_a_changed_spec_changes_what_transform_and_trainer_cache_on(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path / "out")
    spec = settings.load_spec()
    other = dataclasses.replace(spec, features=tuple(
        dataclasses.replace(f, buckets=4) if f.is_numeric and f.role != "label" else f
        for f in spec.features))
    for node in (builder.TRANSFORM, builder.TRAINER):
        assert _nodes(settings, spec)[node].exec_properties["custom_config"] != \
            _nodes(settings, other)[node].exec_properties["custom_config"], node
