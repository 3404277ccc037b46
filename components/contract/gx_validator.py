"""GreatExpectationsValidator: checks CsvExampleGen's output against the dataset's data contract.

It records and does not stop: the combined validation result (GX JSON), a Data Docs page and the
counts go into a DataValidationReport artifact, and ExpectationsGate (gates.py)
fails the run on a critical failure. TFX deletes a failed execution's outputs, so a validator
that raised would take with it the report a person needs to see what broke.
"""
# No `from __future__ import annotations` here: TFX reads the component type hints at runtime.
import json
import os
from typing import Iterator, Tuple

import pandas as pd
from tfx.types import artifact_utils, standard_artifacts
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component

from components.contract import contract_report, example_frames, suite_loading, suite_validation
from components.contract.gates import REPORT_FILE, DataValidationReport
from pipeline.config.dataset_spec import DatasetSpec

VALIDATION_FILE = "validation_result.json"
DATA_DOCS_FILE = "data_docs.html"


def split_batches(examples: standard_artifacts.Examples, spec: DatasetSpec,
                  batch_rows: int) -> Iterator[Tuple[str, pd.DataFrame]]:
    """(split, frame) for every batch of every split, one batch in memory at a time."""
    for split in artifact_utils.decode_split_names(examples.split_names):
        split_uri = artifact_utils.get_split_uri([examples], split)
        for frame in example_frames.example_frames(split_uri, spec, batch_rows):
            yield split, frame


def validate_examples(examples: standard_artifacts.Examples, suite_json: str, suite_source: str,
                      spec_config: dict, output_dir: str,
                      batch_rows: int = example_frames.BATCH_ROWS) -> dict:
    """Validate every split; write the GX result JSON, the Data Docs page and the report into
    output_dir; return the report (see contract_report.report)."""
    spec = DatasetSpec.from_config(spec_config)
    suite = suite_loading.parse_suite(json.loads(suite_json), spec, suite_source)
    # Class shares per split for a class label; a regression label's values are not counted.
    label = None if spec.is_regression else spec.label
    outcome = suite_validation.validate(suite, split_batches(examples, spec, batch_rows),
                                        label=label)
    gx_result = suite_validation.to_gx_result(outcome, data_name=f"Examples {examples.uri}")
    with open(os.path.join(output_dir, VALIDATION_FILE), "w") as f:
        json.dump(gx_result.to_json_dict(), f, indent=2)
    data_docs = os.path.join(output_dir, DATA_DOCS_FILE)
    with open(data_docs, "w") as f:
        f.write(contract_report.render_data_docs(gx_result))
    report = contract_report.report(outcome, data_docs, label=label or "", classes=spec.classes)
    with open(os.path.join(output_dir, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    return report


@component
def GreatExpectationsValidator(  # noqa: N802 - TFX component classes are CamelCase
    examples: InputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[DataValidationReport],
    suite: Parameter[str],
    suite_source: Parameter[str],
    spec: Parameter[str],
    batch_rows: Parameter[int] = example_frames.BATCH_ROWS,
    code_fingerprint: Parameter[str] = "",
) -> None:
    """TFX reuses a cached result while inputs and parameters stay the same, hence `suite` is
    the suite's JSON text, not its path, and `code_fingerprint` changes with the validation
    code: an edited suite or validator is checked again."""
    result = validate_examples(examples, suite, suite_source, json.loads(spec), report.uri,
                               batch_rows)
    report.set_float_custom_property("success_percent", result["success_percent"])
    report.set_int_custom_property("evaluated", result["evaluated"])
    report.set_int_custom_property("passed", result["passed"])
    report.set_int_custom_property("failed_critical", result["failed"][suite_loading.CRITICAL])
    report.set_int_custom_property("failed_warning", result["failed"][suite_loading.WARNING])
    report.set_string_custom_property("data_docs", result["data_docs"])
