"""What makes TFX re-run a stage instead of serving its cache: an edited schema gets a new path
(ImportSchemaGen caches on the path), an edited module a new code_fingerprint in the stage's
properties (TFX does not fingerprint code referenced by dotted path) for every stage whose code
imports it. Pipelines are only built here (write_files=False writes nothing), not run; the
pipeline run pair is in tests/e2e/test_stage_cache_e2e.py."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, REPO
from pipeline.config import stage_names
from pipeline.config.dataset_spec import load_spec
from pipeline.config.settings import Settings
from pipeline.definition import builder, code_closure
from pipeline.runners import last_run


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


# The main pipeline's stages whose code is this repository's, in TFX's order (--tune adds the
# Tuner); the stages of other pipelines (`make score`) after them.
CODE_STAGES = [n for n in stage_names.TUNED_STAGES if n in builder.STAGE_ENTRY_MODULES]
ALL_CODE_STAGES = CODE_STAGES + sorted(set(builder.STAGE_ENTRY_MODULES) - set(CODE_STAGES))

# Run in a fresh interpreter: every module each stage's entries import, observed at run time by
# wrapping __import__ (an import statement calls it even when the module is already loaded), as
# a graph of importer -> imported repo modules. A second method beside code_closure's `ast`
# reading: what actually gets imported.
_OBSERVE_IMPORTS = r"""
import builtins, importlib, json, sys
REPO = sys.argv[1]
edges = {}
real_import = builtins.__import__

def is_repo(name):
    module = sys.modules.get(name)
    return name.split(".")[0] in ("components", "pipeline") and \
        (getattr(module, "__file__", None) or "").startswith(REPO)

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = real_import(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__")
    if importer and is_repo(importer):
        base = importlib.util.resolve_name("." * level + name, globals["__package__"]) \
            if level else name
        parts = base.split(".")
        found = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        found += [f"{base}.{item}" for item in fromlist or () if f"{base}.{item}" in sys.modules]
        edges.setdefault(importer, set()).update(m for m in found if is_repo(m))
    return module

builtins.__import__ = recording_import
entries = json.loads(sys.argv[2])
for entry in sorted({m for modules in entries.values() for m in modules}):
    for i in range(1, entry.count(".") + 2):  # a package's __init__ imports count as its own
        importlib.import_module(".".join(entry.split(".")[:i]))
closures = {}
for stage, modules in entries.items():
    seen, todo = set(), [m for entry in modules for m in
                         [".".join(entry.split(".")[:i]) for i in range(1, entry.count(".") + 2)]]
    while todo:
        name = todo.pop()
        if name not in seen and is_repo(name):
            seen.add(name)
            todo.extend(edges.get(name, ()))
    closures[stage] = sorted(seen)
print(json.dumps(closures))
"""


@pytest.fixture(scope="module")
def imported_modules() -> dict[str, list[str]]:
    """Stage -> the repo modules its entries import, observed by importing them."""
    done = subprocess.run(
        [sys.executable, "-c", _OBSERVE_IMPORTS, str(REPO) + os.sep,
         json.dumps(builder.STAGE_ENTRY_MODULES)],
        capture_output=True, text=True, cwd=REPO, check=True, timeout=300)
    return json.loads(done.stdout.splitlines()[-1])


def test_every_main_stage_with_code_has_entry_modules():
    expected = [
        stage_names.EXAMPLE_GEN, stage_names.EXPECTATIONS_VALIDATOR, stage_names.TRANSFORM,
        stage_names.EXPECTATIONS_GATE, stage_names.ANOMALIES_GATE, stage_names.TUNER,
        stage_names.TRAINER, stage_names.EVALUATOR]
    assert [n for n in CODE_STAGES if n in expected] == expected


@pytest.mark.parametrize("node", ALL_CODE_STAGES)
def test_a_stage_cache_key_covers_every_repo_module_its_code_imports(node, imported_modules):
    observed = set(imported_modules[node])
    # The observation must have seen the stage's own folder, or it proves nothing.
    assert set(builder.STAGE_ENTRY_MODULES[node]) <= observed
    assert len(observed) > len(builder.STAGE_ENTRY_MODULES[node]) + 1, observed
    assert observed <= set(builder.stage_modules(node)), \
        f"{node} imports modules its cache key leaves out: {observed - set(builder.stage_modules(node))}"


def test_known_imports_are_in_the_closures():
    """A few facts read off the code, as a floor that holds whatever the observation says."""
    assert {"components.train.model", "components.train.export_signatures",
            "components.train.hyperparameters", "components.train.in_memory_input",
            "pipeline.config.dataset_spec"} <= set(builder.stage_modules(stage_names.TRAINER))
    assert {"components.evaluate.row_batch_combiners", "components.evaluate.slice_groups",
            "components.evaluate.positional_signatures"} <= \
        set(builder.stage_modules(stage_names.EVALUATOR))
    assert {"components.ingest.csv_format", "components.ingest.range_writer"} <= \
        set(builder.stage_modules(stage_names.EXAMPLE_GEN))
    # Only what a stage imports: the Transform does not re-run for the Trainer's code.
    assert not [m for m in builder.stage_modules(stage_names.TRANSFORM)
                if m.startswith(("components.train", "components.evaluate"))]


def _code_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for folder in last_run.CODE_FOLDERS:
        shutil.copytree(REPO / folder, root / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def _fingerprints(root: Path) -> dict[str, str]:
    return {node: code_closure.fingerprint(*builder.STAGE_ENTRY_MODULES[node], root=root)
            for node in ALL_CODE_STAGES}


def test_an_edit_to_any_module_re_keys_the_stages_that_use_it_and_none_before(tmp_path):
    """Each module of any stage's closure edited in turn, in a copy of the code: exactly the
    stages whose code imports it get a new cache key, so none before the first of them does
    (TFX re-runs the later ones, whose inputs change). The up-to-date shortcut of `make
    pipeline` (last_run) sees every such edit too."""
    root = _code_copy(tmp_path)
    before = _fingerprints(root)
    assert before == {node: builder.stage_fingerprint(node) for node in ALL_CODE_STAGES}
    assert before[stage_names.ANOMALIES_GATE] == before[stage_names.EXPECTATIONS_GATE]  # one module
    code_before = last_run.code_sha256(root)
    modules = sorted({m for node in ALL_CODE_STAGES for m in builder.stage_modules(node)})
    assert len(modules) > 20
    for module in modules:
        path = code_closure.module_file(module, root)
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        try:
            after = _fingerprints(root)
            changed = [node for node in ALL_CODE_STAGES if after[node] != before[node]]
            users = [node for node in ALL_CODE_STAGES if module in builder.stage_modules(node)]
            assert changed == users, module
            main_users = [n for n in CODE_STAGES if n in users]
            if main_users:
                first = CODE_STAGES.index(main_users[0])
                assert not [n for n in CODE_STAGES[:first] if n in changed], module
            assert last_run.code_sha256(root) != code_before, module
        finally:
            path.write_bytes(original)
    assert _fingerprints(root) == before


def test_an_entry_that_is_not_a_repo_module_is_refused():
    with pytest.raises(ValueError, match=r"not a module under components, pipeline .*"
                                          r"\['components\.train\.no_such_module'\]"):
        code_closure.closure("components.train.no_such_module")


def test_the_closure_reads_every_kind_of_import(tmp_path):
    """Relative imports, imports inside functions, packages' __init__; not TYPE_CHECKING-only
    imports, a package's lazy __getattr__, or third-party modules."""
    pkg = tmp_path / "components" / "stage"
    pkg.mkdir(parents=True)
    (tmp_path / "components" / "__init__.py").write_text(
        "def __getattr__(name):\n    from components.stage import lazy\n    return lazy\n")
    (pkg / "__init__.py").write_text("")
    files = {
        "entry": "import json\nfrom . import sibling\nfrom .helpers import f\n"
                 "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                 "    from components.stage import typing_only\n"
                 "def run():\n    import components.stage.inner\n",
        "sibling": "from pipeline.config import names\n",
        "helpers": "def f():\n    from ..stage import deep\n",
        "inner": "", "deep": "", "typing_only": "", "lazy": "",
    }
    for name, text in files.items():
        (pkg / f"{name}.py").write_text(text)
    (tmp_path / "pipeline" / "config").mkdir(parents=True)
    (tmp_path / "pipeline" / "config" / "names.py").write_text("")
    assert code_closure.closure("components.stage.entry", root=tmp_path) == (
        "components", "components.stage", "components.stage.deep", "components.stage.entry",
        "components.stage.helpers", "components.stage.inner", "components.stage.sibling",
        "pipeline.config.names")


def test_the_builder_puts_each_stage_fingerprint_where_tfx_caches_on_it(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path / "out", tune=True)
    nodes = _nodes(settings, settings.load_spec())
    for node in (builder.TRANSFORM, builder.TRAINER, builder.TUNER):
        config = json.loads(nodes[node].exec_properties["custom_config"])
        assert config["code_fingerprint"] == builder.stage_fingerprint(node), node
    for node in (builder.EXPECTATIONS_VALIDATOR, builder.EXPECTATIONS_GATE,
                 builder.ANOMALIES_GATE):
        assert nodes[node].exec_properties["code_fingerprint"] == \
            builder.stage_fingerprint(node), node
    assert builder.stage_fingerprint(builder.EXAMPLE_GEN) in \
        str(nodes[builder.EXAMPLE_GEN].exec_properties["custom_config"])
    # The Evaluator loads components/evaluate/evaluator_module.py (and what it imports) by
    # module_path: their fingerprint rides in the eval config, the Evaluator's only property
    # that can carry it.
    metrics = [m for spec in json.loads(nodes[builder.EVALUATOR].exec_properties["eval_config"])[
        "metrics_specs"] for m in spec["metrics"]]
    configs = [json.loads(m["config"]) for m in metrics if m.get("module") ==
               builder.EVALUATOR_MODULE and m["class_name"] == "ArgmaxAccuracy"]
    assert configs and {c["code_fingerprint"] for c in configs} == {
        builder.stage_fingerprint(builder.EVALUATOR)}


def test_a_changed_spec_changes_what_transform_and_trainer_cache_on(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path / "out")
    spec = settings.load_spec()
    other = dataclasses.replace(spec, features=tuple(
        dataclasses.replace(f, buckets=4) if f.is_numeric and f.role != "label" else f
        for f in spec.features))
    for node in (builder.TRANSFORM, builder.TRAINER):
        assert _nodes(settings, spec)[node].exec_properties["custom_config"] != \
            _nodes(settings, other)[node].exec_properties["custom_config"], node
