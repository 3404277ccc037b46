"""The pipeline's node ids: the stage names a user sees in the summary, in MLflow and in Airflow.

One list for the builder, the settings (`--until`), the live summary and the benchmark, so that
none of them has to import the builder (and TFX with it) to know a stage's name.
"""
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_IMPORTER = "ImportSchemaGen"
SCHEMA_GEN = "SchemaGen"  # only in the `make schema` draft pipeline
EXAMPLE_VALIDATOR = "ExampleValidator"
ANOMALIES_GATE = "AnomaliesGate"
EXPECTATIONS_VALIDATOR = "GreatExpectationsValidator"
EXPECTATIONS_GATE = "ExpectationsGate"
TRANSFORM = "Transform"
TUNER = "Tuner"  # only with --tune: searches the model settings before the Trainer
TRAINER = "Trainer"
BASELINE_RESOLVER = "BaselineModelResolver"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"

# The main pipeline's node ids in run order (a test keeps this equal to what the builder builds).
STAGES = (EXAMPLE_GEN, SCHEMA_IMPORTER, EXPECTATIONS_VALIDATOR, EXPECTATIONS_GATE, STATISTICS_GEN,
          EXAMPLE_VALIDATOR, ANOMALIES_GATE, TRANSFORM, TRAINER, BASELINE_RESOLVER, EVALUATOR,
          PUSHER)
# With --tune, the Tuner runs between the Transform and the Trainer.
TUNED_STAGES = STAGES[:STAGES.index(TRANSFORM) + 1] + (TUNER,) + STAGES[STAGES.index(TRAINER):]


def pipeline_stages(tune: bool) -> tuple[str, ...]:
    """The node ids a run builds, in run order."""
    return TUNED_STAGES if tune else STAGES
