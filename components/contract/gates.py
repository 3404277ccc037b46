"""Data gates: turn a validation record into a stop.

ExampleValidator (TFDV) and GreatExpectationsValidator (the data contract) only record what they
found; a gate fails the run when the record holds a problem that must stop it, with an error
listing each one, so the Trainer (which the pipeline makes wait for the gates) and everything
after it never see bad data (the Transform runs beside the checks: its output feeds nothing
until the gates pass). The validators do not raise themselves because TFX deletes a failed
execution's outputs, and the record is what a person opens to see what broke.
"""
# No `from __future__ import annotations` here: TFX reads the component type hints at runtime.
import json
import logging
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.types import artifact_utils, standard_artifacts
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component

from components.contract import contract_report
from components.contract.data_errors import DataValidationError

REPORT_FILE = "report.json"


class DataValidationReport(types.Artifact):
    """What a validator or a gate saw: a JSON report plus counts as custom properties."""

    # "<module>.<Class>": Kubeflow v2 step containers import the class from this name.
    TYPE_NAME = "components.DataValidationReport"


def describe_anomalies(anomalies_uri: str, split_names: "list[str]") -> "list[str]":
    """One line per anomaly: 'split/feature: short description: description'."""
    problems = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb")
        with open(path, "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            problems.append(f"[{split}] {feature}: {info.short_description}: {info.description}")
        for info in anomalies.dataset_anomaly_info.reason:
            problems.append(f"[{split}] (dataset): {info.short_description}: {info.description}")
    return problems


@component
def AnomaliesGate(  # noqa: N802 - TFX component classes are CamelCase
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    report: OutputArtifact[DataValidationReport],
    code_fingerprint: Parameter[str] = "",
) -> None:
    # code_fingerprint: this module's code (the builder's stage_fingerprint), only there so that
    # TFX's cache, which does not look at a function component's code, re-runs the gate on an edit.
    del code_fingerprint
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    problems = describe_anomalies(anomalies.uri, splits)
    with open(os.path.join(report.uri, REPORT_FILE), "w") as f:
        json.dump({"splits": splits, "anomalies": problems}, f, indent=2)
    report.set_int_custom_property("anomalies", len(problems))
    if problems:
        raise DataValidationError(
            f"TFDV found {len(problems)} anomal{'y' if len(problems) == 1 else 'ies'} against "
            "the schema:\n  " + "\n  ".join(problems)
        )


@component
def ExpectationsGate(  # noqa: N802 - TFX component classes are CamelCase
    validation: InputArtifact[DataValidationReport],
    code_fingerprint: Parameter[str] = "",
) -> None:
    """Fails the run when a critical expectation of the data contract failed; warnings only go
    to the log (the validator's summary line counts them). code_fingerprint: as AnomaliesGate's."""
    del code_fingerprint
    with open(os.path.join(validation.uri, REPORT_FILE)) as f:
        report = json.load(f)
    for message in contract_report.warning_messages(report):
        logging.warning("data contract warning: %s", message)
    message = contract_report.contract_error_message(report)
    if message:
        raise DataValidationError(message)
