"""Evaluator module code (the Evaluator's module_path): TFMA with less per-example work.

TFMA predicts in batches, then splits every batch into one Python dict per example (its
UnbatchExtractor) and feeds each example to every metric's combiner, once per slice it falls in.
Measured on 45k taxi eval rows, that per-example Python is nearly all of the Evaluator's time:

- splitting carried every raw column (19) and every transformed one (21) into each example's
  dict, when the metrics read the label, the prediction and the slicing column only:
  `custom_extractors` drops the other columns from the batch before TFMA splits it;
- accuracy through a Keras metric wrapper (`SparseCategoricalAccuracy`) ran a Keras metric
  per example and AutoGraph-converted its update function at start-up (~6 s);
  `ArgmaxAccuracy` reads the same number off the multi-class confusion matrix that the
  confusion-matrix plot computes anyway (argmax prediction against the label).
"""
from __future__ import annotations

from typing import Any, Iterable

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import unbatch_extractor
from tensorflow_model_analysis.metrics import metric_types, multi_class_confusion_matrix_metrics

ACCURACY_NAME = "sparse_categorical_accuracy"
PRUNE_STAGE_NAME = "KeepOnlyWhatMetricsAndSlicesRead"
# Extract keys that hold per-column dicts: only the slicing columns are kept in them.
_COLUMN_KEYS = (constants.FEATURES_KEY, constants.TRANSFORMED_FEATURES_KEY)


def slicing_columns(eval_config: tfma.EvalConfig) -> set[str]:
    """Every column a slicing spec of the config reads."""
    columns: set[str] = set()
    for spec in eval_config.slicing_specs:
        columns.update(spec.feature_keys)
        columns.update(spec.feature_values)
    for cross in eval_config.cross_slicing_specs:
        for spec in [cross.baseline_spec, *cross.slicing_specs]:
            columns.update(spec.feature_keys)
            columns.update(spec.feature_values)
    return columns


def prune_batch(extracts: dict[str, Any], keep_columns: Iterable[str]) -> dict[str, Any]:
    """A batched extract without the columns no metric or slice reads, and without the raw
    serialized examples: labels, predictions and example weights are already extracted."""
    keep = set(keep_columns)
    pruned = {k: v for k, v in extracts.items() if k != constants.INPUT_KEY}
    for key in _COLUMN_KEYS:
        columns = pruned.get(key)
        if isinstance(columns, dict):
            # A multi-model evaluation keys transformed features by model name first.
            pruned[key] = {name: ({c: v for c, v in value.items() if c in keep}
                                  if isinstance(value, dict) else value)
                           for name, value in columns.items()
                           if name in keep or isinstance(value, dict)}
    return pruned


def custom_extractors(eval_shared_model, eval_config: tfma.EvalConfig,
                      tensor_adapter_config) -> list:
    """TFX's Evaluator calls this (module_path): TFMA's default extractors with the batch pruned
    right before it is split into examples."""
    extractors = tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config,
        tensor_adapter_config=tensor_adapter_config)
    names = [e.stage_name for e in extractors]
    unbatch = names.index(unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)
    keep = slicing_columns(eval_config)
    extractors.insert(unbatch, tfma.extractors.Extractor(
        stage_name=PRUNE_STAGE_NAME,
        ptransform=beam.Map(prune_batch, keep_columns=sorted(keep))))
    return extractors


class ArgmaxAccuracy(tfma.metrics.Metric):
    """Accuracy of the argmax class against the label id, named like Keras'
    sparse_categorical_accuracy, computed from TFMA's multi-class confusion matrix at threshold
    0 (the one MultiClassConfusionMatrixPlot shares, so no combiner of its own)."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_accuracy), name=name)


def _accuracy(name: str = ACCURACY_NAME, eval_config=None, model_name: str = "",
              output_name: str = "", example_weighted: bool = False):
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
        thresholds=[0.0], eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    matrices_key = computations[-1].keys[-1]

    def result(metrics: dict) -> dict:
        matrix = metrics[matrices_key].get(0.0, {})
        total = sum(matrix.values())
        correct = sum(v for k, v in matrix.items() if k.actual_class_id == k.predicted_class_id)
        return {key: correct / total if total else float("nan")}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations
