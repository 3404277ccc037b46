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
# Drift between data drops (components/score/drift.py): this run's statistics against those of
# the last successful run, when its data differed.
PREVIOUS_STATISTICS_RESOLVER = "PreviousStatisticsResolver"
DRIFT_VALIDATOR = "DistributionValidator"
DRIFT_GATE = "DriftGate"

# The scoring pipeline (`make score`, docs/scoring.md). It reuses the ingestion, statistics,
# contract and drift ids above; these are its own.
CHAMPION_MODEL = "ChampionModel"  # Importer of the champion's Model artifact
CHAMPION_STATISTICS = "ChampionStatistics"  # Importer of its training data's statistics
SERVING_VALIDATOR = "ServingExampleValidator"  # the schema in the SERVING environment
BULK_INFERRER = "BulkInferrer"
PREDICTIONS_WRITER = "PredictionsWriter"

# The main pipeline's node ids in TFX's topological order (a test keeps this equal to what the
# builder builds). The Transform needs only the examples and the schema; the checks run beside
# it and the Trainer waits for their gates (CHECKS, below).
STAGES = (EXAMPLE_GEN, SCHEMA_IMPORTER, EXPECTATIONS_VALIDATOR, TRANSFORM, EXPECTATIONS_GATE,
          STATISTICS_GEN, EXAMPLE_VALIDATOR, PREVIOUS_STATISTICS_RESOLVER, ANOMALIES_GATE,
          DRIFT_VALIDATOR, DRIFT_GATE, TRAINER, BASELINE_RESOLVER, EVALUATOR, PUSHER)
# The checks of a run's data and their gates: nothing on the model's path reads their outputs
# before the Trainer, which waits for the gates, so a local run runs them beside the Transform
# (pipeline/runners/check_branch.py).
CHECKS = (EXPECTATIONS_VALIDATOR, EXPECTATIONS_GATE, STATISTICS_GEN, EXAMPLE_VALIDATOR,
          PREVIOUS_STATISTICS_RESOLVER, ANOMALIES_GATE, DRIFT_VALIDATOR, DRIFT_GATE)
# With --tune, the Tuner runs after the Transform and the checks, before the Trainer.
TUNED_STAGES = STAGES[:STAGES.index(TRAINER)] + (TUNER,) + STAGES[STAGES.index(TRAINER):]


# The Trainer's per-epoch metrics, beside its model (components/train/trainer_module.py writes it):
# named here so the summary and the tracking task read it without importing TensorFlow.
TRAINING_HISTORY_FILE = "history.json"

# The scoring pipeline is named the training pipeline's name plus this.
SCORING_SUFFIX = "-score"
# The one split of a file to score: every row, in the file's order.
SCORE_SPLIT = "score"
# The scoring pipeline's node ids (its checks and its inference run beside each other: no one
# run order); the Evaluator only when the file has the label.
SCORING_STAGES = (EXAMPLE_GEN, SCHEMA_IMPORTER, CHAMPION_MODEL, CHAMPION_STATISTICS,
                  EXPECTATIONS_VALIDATOR, EXPECTATIONS_GATE, STATISTICS_GEN, SERVING_VALIDATOR,
                  ANOMALIES_GATE, DRIFT_VALIDATOR, DRIFT_GATE, BULK_INFERRER, EVALUATOR,
                  PREDICTIONS_WRITER)


# Its checks, run beside the BulkInferrer and the PredictionsWriter (into the pipeline root);
# the Evaluator waits for their gates, the published file for the whole run
# (pipeline/runners/check_branch.py, pipeline/runners/scores_folder.py).
SCORING_CHECKS = (EXPECTATIONS_VALIDATOR, EXPECTATIONS_GATE, STATISTICS_GEN, SERVING_VALIDATOR,
                  ANOMALIES_GATE, DRIFT_VALIDATOR, DRIFT_GATE)


def scoring_stages(labelled: bool) -> tuple[str, ...]:
    """The scoring pipeline's node ids."""
    return SCORING_STAGES if labelled else tuple(s for s in SCORING_STAGES if s != EVALUATOR)


def pipeline_stages(tune: bool) -> tuple[str, ...]:
    """The node ids a run builds, in run order."""
    return TUNED_STAGES if tune else STAGES
