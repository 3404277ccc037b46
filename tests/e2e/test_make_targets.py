"""The drafting and compiling commands behind `make schema` and `make compile-kfp`, run as the
Makefile runs them (`python -m pipeline <command> --dataset ...`), into a temp folder."""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import pipeline_command
from pipeline.config.settings import Settings
from pipeline.config.stage_names import STAGES

pytestmark = pytest.mark.e2e


def test_make_schema_drafts_a_schema_of_every_column_for_review(tmp_path):
    import tensorflow_data_validation as tfdv

    settings = Settings(dataset="penguins", output_root=tmp_path)
    done = subprocess.run(pipeline_command("schema", "--dataset", "penguins", "--output-root",
                                           str(tmp_path)),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    draft = settings.output_dir / "schema_draft" / "schema.pbtxt"
    spec = settings.load_spec()
    assert f"Draft schema: {draft}\nReview it, then copy it to {spec.schema_path}\n" in done.stdout
    schema = tfdv.load_schema_text(str(draft))
    assert sorted(f.name for f in schema.feature) == sorted(spec.column_names)
    islands = next(d for d in schema.string_domain if d.name == "island")
    assert sorted(islands.value) == ["Biscoe", "Dream", "Torgersen"]
    # As many new values as the drafted contract allows, not TFDV's default of none.
    from components.contract.suite_draft import CATEGORY_MOSTLY

    island = next(f for f in schema.feature if f.name == "island")
    assert island.distribution_constraints.min_domain_mass == pytest.approx(CATEGORY_MOSTLY)
    assert not next(f for f in schema.feature if f.name == "bill_length_mm").HasField(
        "distribution_constraints")
    assert spec.schema_path != draft  # the shipped schema is reviewed by hand, never overwritten


def test_make_compile_kfp_writes_the_spec_and_says_where(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    done = subprocess.run(pipeline_command("compile-kfp", "--dataset", "penguins",
                                           "--output-root", str(tmp_path)),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines()
                if line.startswith("Kubeflow v2 pipeline spec: "))
    path = line.split(": ", 1)[1]
    tasks = json.loads(open(path).read())["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {t for t in tasks if "-" not in t} == set(STAGES) - {"BaselineModelResolver"}
    assert f"  image: {settings.cluster_image}" in done.stdout
