"""AnomaliesGate: turns ExampleValidator's anomalies record into a stop.

ExampleValidator only records anomalies; this component fails the run when there are any, with
an error listing each one by feature, so Transform (which the pipeline makes wait for it) and
everything after it never see bad data.
"""

import json
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.types import artifact_utils, standard_artifacts
from tfx.v1.dsl.components import InputArtifact, OutputArtifact, component

REPORT_FILE = "report.json"


class DataValidationReport(types.Artifact):
    """What a data gate saw: a JSON report plus counts as custom properties."""

    TYPE_NAME = "DataValidationReport"


class DataValidationError(RuntimeError):
    """Input data broke the schema or the data contract; the message lists every problem."""


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
) -> None:
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
