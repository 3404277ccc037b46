"""TFMA EvalConfig built from the dataset spec and the settings' thresholds."""
from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.signatures import PROBABILITIES, SERVING_DEFAULT, TRANSFORM_FEATURES
from pipeline.dataset_spec import BINARY, DatasetSpec
from pipeline.settings import Settings

# Tiny slack so that a re-trained model scoring exactly the baseline still passes "no worse".
_EPSILON = 1e-10


def gated_metric(spec: DatasetSpec) -> str:
    """The metric that decides blessing: AUC for binary tasks, accuracy otherwise."""
    return "auc" if spec.task == BINARY else "sparse_categorical_accuracy"


def _threshold(lower_bound: float, max_drop: float) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_drop - _EPSILON},
        ),
    )


def make_eval_config(spec: DatasetSpec, settings: Settings) -> tfma.EvalConfig:
    accuracy = tfma.MetricConfig(class_name="SparseCategoricalAccuracy",
                                 config='{"name": "sparse_categorical_accuracy"}')
    count = tfma.MetricConfig(class_name="ExampleCount")
    if spec.task == BINARY:
        # Two softmax outputs: binarize on the positive class (id 1) for AUC, precision, recall.
        accuracy_spec = tfma.MetricsSpec(metrics=[count, accuracy])
        binary_spec = tfma.MetricsSpec(
            metrics=[
                tfma.MetricConfig(class_name="AUC", config='{"name": "auc"}',
                                  threshold=_threshold(settings.min_auc, settings.max_metric_drop)),
                tfma.MetricConfig(class_name="Precision"),
                tfma.MetricConfig(class_name="Recall"),
            ],
            binarize=tfma.BinarizationOptions(class_ids={"values": [1]}),
        )
        metrics_specs = [accuracy_spec, binary_spec]
    else:
        accuracy.threshold.CopyFrom(_threshold(settings.min_accuracy, settings.max_metric_drop))
        metrics_specs = [
            tfma.MetricsSpec(metrics=[count, accuracy]),
            tfma.MetricsSpec(
                metrics=[tfma.MetricConfig(class_name="Precision"),
                         tfma.MetricConfig(class_name="Recall")],
                binarize=tfma.BinarizationOptions(
                    class_ids={"values": list(range(spec.num_classes))}),
            ),
        ]
    slicing = [tfma.SlicingSpec()]
    if spec.slice_by:
        slicing.append(tfma.SlicingSpec(feature_keys=[spec.slice_by]))
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=SERVING_DEFAULT,
                prediction_key=PROBABILITIES,
                label_key=spec.transformed_label,
                preprocessing_function_names=[TRANSFORM_FEATURES],
            )
        ],
        metrics_specs=metrics_specs,
        slicing_specs=slicing,
    )
