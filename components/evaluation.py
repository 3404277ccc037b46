"""Evaluator module code (the Evaluator's module_path): TFMA with less per-example work.

TFMA predicts in batches, then splits every batch into one Python dict per example (its
UnbatchExtractor) and feeds each example to every metric's combiner, once per slice it falls in.
Measured on 45k taxi eval rows, that per-example Python is nearly all of the Evaluator's time:

- splitting carried every raw column (19) and every transformed one (21) into each example's
  dict, when the metrics read the label, the prediction and the slicing column only:
  `custom_extractors` drops the other columns from the batch before TFMA splits it;
- accuracy through a Keras metric wrapper (`SparseCategoricalAccuracy`) ran a Keras metric
  per example and AutoGraph-converted its update function at start-up (~6 s), and precision and
  recall ran a binary confusion-matrix combiner of their own per class: `ArgmaxAccuracy`,
  `ClassPrecision` and `ClassRecall` read the same numbers off the multi-class confusion matrix
  the confusion-matrix plot computes anyway, at thresholds 0 (the argmax class) and 0.5.
  Exact, not approximated: probabilities sum to 1, so at most one class scores above 0.5, and
  "class c scores above 0.5" is "the top class is c and it scores above 0.5", which is what
  that matrix counts at 0.5. Every combiner of the shared matrices must list the same
  thresholds (MATRIX_THRESHOLDS): TFMA keeps one of two computations with the same key.
"""
from __future__ import annotations

from typing import Any, Iterable

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import unbatch_extractor
from tensorflow_model_analysis.metrics import metric_types, multi_class_confusion_matrix_metrics

ACCURACY_NAME = "sparse_categorical_accuracy"
PRECISION_NAME = "precision"
RECALL_NAME = "recall"
# The shared multi-class confusion matrices: the argmax class (threshold 0) for accuracy and the
# confusion plot, the class above 0.5 for precision and recall (TFMA's default threshold).
MATRIX_THRESHOLDS = (0.0, 0.5)
_ARGMAX, _HALF = MATRIX_THRESHOLDS
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


def _matrices(eval_config, model_name: str, output_name: str, example_weighted: bool):
    """TFMA's multi-class confusion matrices at MATRIX_THRESHOLDS, and their key."""
    computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
        thresholds=list(MATRIX_THRESHOLDS), eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    return computations, computations[-1].keys[-1]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


class ArgmaxAccuracy(tfma.metrics.Metric):
    """Accuracy of the argmax class against the label id, named like Keras'
    sparse_categorical_accuracy, off the shared multi-class confusion matrix at threshold 0."""

    def __init__(self, name: str = ACCURACY_NAME, code_fingerprint: str = ""):
        # code_fingerprint is not used here: it sits in the eval config (the Evaluator's
        # properties, which TFX caches on) so that editing this module re-runs the Evaluator.
        super().__init__(tfma.metrics.merge_per_key_computations(_accuracy), name=name)


def _accuracy(name: str = ACCURACY_NAME, eval_config=None, model_name: str = "",
              output_name: str = "", example_weighted: bool = False):
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    computations, matrices_key = _matrices(eval_config, model_name, output_name,
                                           example_weighted)

    def result(metrics: dict) -> dict:
        matrix = metrics[matrices_key].get(_ARGMAX, {})
        correct = sum(v for k, v in matrix.items() if k.actual_class_id == k.predicted_class_id)
        return {key: _ratio(correct, sum(matrix.values()))}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


class ClassPrecision(tfma.metrics.Metric):
    """TFMA's binarized Precision at 0.5 (same name and sub keys, one per binarized class), off
    the shared multi-class confusion matrix at 0.5."""

    def __init__(self, name: str = PRECISION_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_precision), name=name)


class ClassRecall(tfma.metrics.Metric):
    """TFMA's binarized Recall at 0.5, off the shared multi-class confusion matrix at 0.5."""

    def __init__(self, name: str = RECALL_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_recall), name=name)


def _precision(name: str = PRECISION_NAME, eval_config=None, model_name: str = "",
               output_name: str = "", sub_key=None, example_weighted: bool = False):
    return _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted,
                    predicted=True)


def _recall(name: str = RECALL_NAME, eval_config=None, model_name: str = "",
            output_name: str = "", sub_key=None, example_weighted: bool = False):
    return _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted,
                    predicted=False)


def _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted, predicted):
    """Precision (predicted=True: true positives over examples predicted as the class) or recall
    (over examples of the class) of sub_key's class at 0.5."""
    if sub_key is None or sub_key.class_id is None:
        raise ValueError(f"{name} needs a binarized class (MetricsSpec.binarize.class_ids)")
    class_id = sub_key.class_id
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    computations, matrices_key = _matrices(eval_config, model_name, output_name,
                                           example_weighted)

    def result(metrics: dict) -> dict:
        matrix = metrics[matrices_key].get(_HALF, {})
        hits = sum(v for k, v in matrix.items()
                   if k.actual_class_id == class_id and k.predicted_class_id == class_id)
        side = "predicted_class_id" if predicted else "actual_class_id"
        total = sum(v for k, v in matrix.items() if getattr(k, side) == class_id)
        return {key: _ratio(hits, total)}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations
