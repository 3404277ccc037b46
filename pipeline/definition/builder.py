"""The one pipeline definition. Every runner (local, Airflow, Kubeflow) calls create_pipeline."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

# TFX's own modules rather than `from tfx import v1`: the v1 facade also imports the Google Cloud
# extensions (Vertex AI client and all), ~2.4 s of every process that builds the pipeline.
from google.protobuf import any_pb2, struct_pb2
# The components this pipeline uses, each from its own module: TFX's `tfx.components` package
# imports every component (KerasTuner, and Keras 3 with it, among them), and its init is
# deferred (pipeline/cli/unused_imports.py).
from tfx.components.evaluator.component import Evaluator
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.pusher.component import Pusher
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy)
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from components.evaluate import baseline_strategy
from components.contract import suite_loading
from components.contract.gates import AnomaliesGate, ExpectationsGate
from components.contract.gx_validator import GreatExpectationsValidator
from components.ingest import csv_format
from components.ingest import executor as ingest_executor
from components.ingest.statistics_gen import StatisticsGen
from components.score import (bulk_inference, drift, previous_statistics, scoring_suite,
                              serving_schema)
from components.score.schema_types import output_column, output_key
from components.score.writer import PredictionsWriter
from components.train.export_signatures import SERVING_DEFAULT
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.file_digest import file_sha256
from pipeline.config.settings import MODEL_SETTINGS, Settings, check_train_ratio
from pipeline.config.stage_names import (
    ANOMALIES_GATE,
    BASELINE_RESOLVER,
    BULK_INFERRER,
    CHAMPION_MODEL,
    CHAMPION_STATISTICS,
    DRIFT_GATE,
    DRIFT_VALIDATOR,
    EVALUATOR,
    EXAMPLE_GEN,
    EXAMPLE_VALIDATOR,
    EXPECTATIONS_GATE,
    EXPECTATIONS_VALIDATOR,
    PREDICTIONS_WRITER,
    PREVIOUS_STATISTICS_RESOLVER,
    PUSHER,
    SCHEMA_GEN,
    SCHEMA_IMPORTER,
    SCORE_SPLIT,
    SCORING_SUFFIX,
    SERVING_VALIDATOR,
    STATISTICS_GEN,
    TRAINER,
    TRANSFORM,
    TUNER,
)
from pipeline.definition import code_closure
from pipeline.definition.eval_config import make_eval_config
from pipeline.mlmd.champion import Champion

PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"
RUN_FN = "components.train.trainer_module.run_fn"
EVALUATOR_MODULE = "components.evaluate.evaluator_module"
TUNER_MODULE = "components.train.tuner_search"  # imported only with --tune

def code_fingerprint(*modules: str) -> str:
    """Hash of the source of the given entry modules and every repo module they import
    (code_closure). Module functions are referenced by dotted path, which TFX does not
    fingerprint, so this goes into the stage's properties: editing the code re-runs the stage
    that uses it instead of serving a stale cached result."""
    return code_closure.fingerprint(*modules)


# Each stage's entry modules: the code TFX runs for it, named by dotted path or class. Its cache
# key covers them and, computed, every module under components/ and pipeline/ they import.
STAGE_ENTRY_MODULES: dict[str, tuple[str, ...]] = {
    EXAMPLE_GEN: (ingest_executor.__name__,),
    EXPECTATIONS_VALIDATOR: (GreatExpectationsValidator.__module__,),
    EXPECTATIONS_GATE: (ExpectationsGate.__module__,),
    ANOMALIES_GATE: (AnomaliesGate.__module__,),
    TRANSFORM: (PREPROCESSING_FN.rpartition(".")[0],),
    TUNER: (TUNER_MODULE,),
    TRAINER: (RUN_FN.rpartition(".")[0],),
    EVALUATOR: (EVALUATOR_MODULE,),
    DRIFT_GATE: (drift.DriftGate.__module__,),
    SERVING_VALIDATOR: (serving_schema.ServingExampleValidator.__module__,),
    PREDICTIONS_WRITER: (PredictionsWriter.__module__,),
    BULK_INFERRER: (bulk_inference.__name__,),
    STATISTICS_GEN: (StatisticsGen.__module__,),
}


def stage_modules(node_id: str) -> tuple[str, ...]:
    """The repo modules a stage's code imports, its entries included: what its cache key
    covers. () for stages that run only TFX's own code."""
    entries = STAGE_ENTRY_MODULES.get(node_id)
    return code_closure.closure(*entries) if entries else ()


def stage_fingerprint(node_id: str) -> str:
    return code_fingerprint(*STAGE_ENTRY_MODULES[node_id])


def _content_addressed_copy(source: Path, folder: Path, write: bool = True) -> Path:
    """Copy a file under a name derived from its content. ImportSchemaGen caches on the path it
    is given, so an edited schema must get a new path to be imported again. write=False: only
    the path (compiling for another machine writes nothing here)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = folder / digest / source.name
    if write and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target


def _example_gen(spec: DatasetSpec, settings: Settings) -> FileBasedExampleGen:
    """CsvExampleGen's examples and splits from components/ingest's executor (pyarrow and
    tfx_bsl, memory flat in the rows); the node keeps the id CsvExampleGen."""
    train_buckets = round(check_train_ratio(settings.train_ratio) * 100)
    # TFX's cache does not look at executor code: its fingerprint re-runs the stage on an edit.
    options = struct_pb2.Struct(fields={"code_fingerprint": struct_pb2.Value(
        string_value=stage_fingerprint(EXAMPLE_GEN))})
    if spec.missing_values:  # part of the cache key: changing the list re-runs ingestion
        options.update({ingest_executor.MISSING_VALUES_KEY: list(spec.missing_values)})
    fingerprint = any_pb2.Any()
    fingerprint.Pack(options)
    return FileBasedExampleGen(
        custom_executor_spec=executor_spec.BeamExecutorSpec(ingest_executor.Executor),
        custom_config=example_gen_pb2.CustomConfig(custom_config=fingerprint),
        input_base=str(spec.csv_path.parent),
        # Only the spec's CSV: the folder also holds the spec, the schema and the GX suite.
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=spec.csv_path.name)]
        ),
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train_buckets),
                    example_gen_pb2.SplitConfig.Split(name="eval",
                                                      hash_buckets=100 - train_buckets),
                ]
            )
        ),
    ).with_id(EXAMPLE_GEN)


def create_schema_draft_pipeline(settings: Settings, spec: DatasetSpec) -> Pipeline:
    """CsvExampleGen -> StatisticsGen -> SchemaGen, for `make schema`: a draft to review."""
    example_gen = _example_gen(spec, settings)
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"],
        code_fingerprint=stage_fingerprint(STATISTICS_GEN)).with_id(STATISTICS_GEN)
    schema_gen = SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
    ).with_id(SCHEMA_GEN)
    return _pipeline(settings, [example_gen, statistics_gen, schema_gen], name_suffix="-schema")


def create_pipeline(settings: Settings, spec: DatasetSpec, *, write_files: bool = True
                    ) -> Pipeline:
    """The pipeline. write_files=False when only compiling it (Kubeflow): no file is written,
    not even the content-addressed schema copy a local run imports."""
    example_gen = _example_gen(spec, settings)
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"],
        code_fingerprint=stage_fingerprint(STATISTICS_GEN)).with_id(STATISTICS_GEN)
    schema_importer = ImportSchemaGen(
        schema_file=str(_content_addressed_copy(spec.schema_path,
                                                settings.pipeline_root / "_schemas", write_files))
    ).with_id(SCHEMA_IMPORTER)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_importer.outputs["schema"]
    ).with_id(EXAMPLE_VALIDATOR)
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        code_fingerprint=stage_fingerprint(ANOMALIES_GATE)).with_id(ANOMALIES_GATE)
    suite_path = suite_loading.suite_path(spec)
    suite_loading.load_suite(suite_path, spec)  # a broken suite fails here, before any work
    expectations_validator = GreatExpectationsValidator(
        examples=example_gen.outputs["examples"],
        suite=suite_path.read_text(),
        suite_source=str(suite_path),
        spec=json.dumps(spec.to_config()),
        code_fingerprint=stage_fingerprint(EXPECTATIONS_VALIDATOR),
    ).with_id(EXPECTATIONS_VALIDATOR)
    expectations_gate = ExpectationsGate(
        validation=expectations_validator.outputs["report"],
        code_fingerprint=stage_fingerprint(EXPECTATIONS_GATE)).with_id(EXPECTATIONS_GATE)
    # Statistics only for data that keeps the contract: a CSV the contract refuses stops the run
    # right after the check, without waiting for StatisticsGen and ExampleValidator.
    statistics_gen.add_upstream_node(expectations_gate)
    drift_nodes = _drop_drift(settings, spec, statistics_gen)

    transform_config = {
        "spec": spec.to_config(),
        "code_fingerprint": stage_fingerprint(TRANSFORM),
    }
    trainer_config = {
        "spec": spec.to_config(),
        "code_fingerprint": stage_fingerprint(TRAINER),
        "training": {
            # regression_loss only where it applies: a classification run's config (its cache
            # key and tracked parameters) is what it was before regression existed.
            **{name: getattr(settings, name) for name in MODEL_SETTINGS
               if spec.is_regression or name != "regression_loss"},
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "early_stopping_patience": settings.early_stopping_patience,
            "seed": settings.seed,
        },
    }
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_importer.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_config,
        # Post-transform statistics double the Beam work and nothing downstream reads them.
        disable_statistics=True,
        # The analyzer cache only pays off for incremental analysis over growing spans, which
        # this pipeline does not do; writing it costs a trace and a Beam branch per analyzer.
        disable_analyzer_cache=True,
        force_tf_compat_v1=True,
    ).with_id(TRANSFORM)

    tuner = _tuner(settings, spec, transform, schema_importer, trainer_config)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_importer.outputs["schema"],
        # --tune: TFX's hyperparameters channel; run_fn lays the best set over the settings.
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=trainer_config,
    ).with_id(TRAINER)
    # The gates have no data output for the Trainer to consume, so order them explicitly: no
    # model learns from data a gate refused. The Transform does not wait for them: it runs
    # beside the checks (pipeline/runners/check_branch.py; Airflow runs them as parallel tasks).
    # drift_nodes[-1] is the drift gate: columns the spec marks critical stop the run there.
    for node in filter(None, (tuner, trainer)):
        for gate in (anomalies_gate, expectations_gate, drift_nodes[-1]):
            node.add_upstream_node(gate)

    # The default strategy leaves the candidate out (see components/evaluate/baseline_strategy.py); Kubeflow v2
    # only runs TFX's own strategies, so its runner asks for LatestBlessedModelStrategy.
    if settings.baseline_strategy == "latest_blessed":
        strategy, extra_inputs = LatestBlessedModelStrategy, {}
    else:
        strategy = baseline_strategy.LatestBlessedOtherModelStrategy
        extra_inputs = {"candidate": trainer.outputs["model"]}
    baseline_resolver = Resolver(
        strategy_class=strategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        **extra_inputs,
    ).with_id(BASELINE_RESOLVER)

    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=make_eval_config(spec, settings,
                                     module_fingerprint=stage_fingerprint(EVALUATOR)),
        # TFMA's extractors with each batch pruned to the columns metrics and slices read.
        module_path=EVALUATOR_MODULE,
    ).with_id(EVALUATOR)

    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=str(settings.serving_dir))
        ),
    ).with_id(PUSHER)

    return _pipeline(settings, [
        example_gen, statistics_gen, schema_importer, example_validator, anomalies_gate,
        expectations_validator, expectations_gate, *drift_nodes, transform,
        *([tuner] if tuner else []), trainer, baseline_resolver, evaluator, pusher,
    ], write_files=write_files)


def _tuner(settings: Settings, spec: DatasetSpec, transform, schema_importer,
           trainer_config: dict):
    """--tune: TFX's Tuner over the settings' search space (None without --tune). Its module
    code and training settings are the Trainer's, so a trial trains what the Trainer would."""
    if not settings.tune:
        return None
    # Imported here: only a tuned pipeline pays for KerasTuner's (Keras 3) import.
    from components.train.tuner_search import TUNER_FN, TrialRecordingTuner
    from components.train.hyperparameters import parse_search_space

    return TrialRecordingTuner(
        tuner_fn=TUNER_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_importer.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config={
            **trainer_config,
            "code_fingerprint": stage_fingerprint(TUNER),
            "tuning": {
                "algorithm": settings.tuner_algorithm,
                "max_trials": settings.tuner_max_trials,
                "epochs": settings.tuner_epochs,
                "search_space": parse_search_space(settings.tuner_search_space),
            },
        },
    ).with_id(TUNER)


def _pipeline(settings: Settings, nodes: list, name_suffix: str = "",
              write_files: bool = True) -> Pipeline:
    return Pipeline(
        pipeline_name=settings.full_pipeline_name + name_suffix,
        pipeline_root=str(settings.pipeline_root),
        components=nodes,
        enable_cache=True,
        metadata_connection_config=_metadata_config(settings, write_files),
        beam_pipeline_args=settings.beam_pipeline_args(),
    )


def _metadata_config(settings: Settings, write_files: bool):
    """ML Metadata in the dataset's SQLite file. TFX's helper also makes its folder, which a
    compile-only build (write_files=False) must not."""
    if write_files:
        return tfx_metadata.sqlite_metadata_connection_config(str(settings.metadata_path))
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(settings.metadata_path)
    config.sqlite.connection_mode = \
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


def _committed_schema(spec: DatasetSpec):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(spec.schema_path.read_text(), schema_pb2.Schema())


def _drop_drift(settings: Settings, spec: DatasetSpec, statistics_gen) -> list:
    """Drift between data drops (components/score/previous_statistics.py, drift.py): this run's
    statistics against the last successful run's, when its data differed. The resolver takes
    this run's statistics as an input, so it runs after StatisticsGen on every orchestrator."""
    from tfx.components.distribution_validator.component import DistributionValidator

    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy)

    statistics = statistics_gen.outputs["statistics"]
    if settings.baseline_strategy == "latest_blessed":
        # TFX's own strategies only (what Kubeflow v2 can run): the newest statistics before
        # this run's, whichever run made them, so the resolver runs before StatisticsGen.
        resolver = Resolver(
            strategy_class=LatestArtifactStrategy,
            baseline=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(PREVIOUS_STATISTICS_RESOLVER)
        statistics_gen.add_upstream_node(resolver)
    else:
        resolver = Resolver(
            strategy_class=previous_statistics.PreviousRunStatisticsStrategy,
            config={"pipeline_name": settings.full_pipeline_name,
                    "statistics_node": STATISTICS_GEN, "final_node": PUSHER},
            statistics=statistics,
            baseline=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(PREVIOUS_STATISTICS_RESOLVER)
    # Optional: with no earlier run (or the same data) the validator compares nothing.
    baseline = resolver.outputs[previous_statistics.BASELINE].as_optional()
    columns = drift.checked_columns(spec, _committed_schema(spec))
    validator = DistributionValidator(
        statistics=statistics, baseline_statistics=baseline,
        config=drift.distribution_config(spec, columns, spec.drift.row_count_change),
        include_split_pairs=[(DROP_DRIFT_SPLIT, DROP_DRIFT_SPLIT)],
    ).with_id(DRIFT_VALIDATOR)
    gate = drift.DriftGate(
        anomalies=validator.outputs["anomalies"], statistics=statistics,
        baseline_statistics=baseline, critical_columns=json.dumps(list(spec.drift.critical)),
        compare_rows=1, code_fingerprint=stage_fingerprint(DRIFT_GATE), label=spec.label,
        row_count_change=spec.drift.row_count_change,
    ).with_id(DRIFT_GATE)
    return [resolver, validator, gate]


# Drops are compared on the split the model learns from.
DROP_DRIFT_SPLIT = "train"
# The scoring pipeline (`make score`) is named the training pipeline's name plus SCORING_SUFFIX,
# in the same ML Metadata store and pipeline root, so its nodes can import the champion's
# artifacts.


def scoring_pipeline_name(settings: Settings) -> str:
    return settings.full_pipeline_name + SCORING_SUFFIX


def _content_addressed_text(text: str, folder: Path, name: str, write: bool = True) -> Path:
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = folder / digest / name
    if write and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return target


def _scoring_example_gen(spec: DatasetSpec, column_types: dict[str, str]
                         ) -> FileBasedExampleGen:
    """The training pipeline's ingestion executor on the file to score: one split holding every
    row, each with its position (the row key the writer joins predictions on), and the columns
    typed as the model's schema types them."""
    options = struct_pb2.Struct()
    options.update({
        "code_fingerprint": stage_fingerprint(EXAMPLE_GEN),
        ingest_executor.COLUMN_TYPES_KEY: column_types,
        ingest_executor.ROW_KEY_FEATURE_KEY: serving_schema.ROW_KEY,
    })
    if spec.missing_values:
        options.update({ingest_executor.MISSING_VALUES_KEY: list(spec.missing_values)})
    config = any_pb2.Any()
    config.Pack(options)
    return FileBasedExampleGen(
        custom_executor_spec=executor_spec.BeamExecutorSpec(ingest_executor.Executor),
        custom_config=example_gen_pb2.CustomConfig(custom_config=config),
        input_base=str(spec.csv_path.parent),
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=spec.csv_path.name)]
        ),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name=SCORE_SPLIT, hash_buckets=1)])),
    ).with_id(EXAMPLE_GEN)


def create_scoring_pipeline(settings: Settings, spec: DatasetSpec, champion: Champion, *,
                            write_files: bool = True) -> Pipeline:
    """Score spec.csv_path (a new file, label optional) with the champion model: ingestion,
    the contract's expectations that apply to new rows, statistics, the schema in its SERVING
    environment, drift against the champion's training statistics, BulkInferrer, the scored
    CSV; the Evaluator too when the file has the label. The BulkInferrer and the writer run
    beside the checks (pipeline/runners/check_branch.py); the gates stop the run before
    anything is evaluated or published under scores/."""
    from tfx.components.distribution_validator.component import DistributionValidator
    from tfx.dsl.components.common.importer import Importer
    from tfx.proto import bulk_inferrer_pb2

    header = list(csv_format.inspect(spec.csv_path).header)
    committed = _committed_schema(spec)
    from google.protobuf import text_format

    suite_path = suite_loading.suite_path(spec)
    suite = scoring_suite.scoring_suite(json.loads(suite_path.read_text()), spec.label,
                                        header, spec.unread_columns)
    schema_file = _content_addressed_text(
        text_format.MessageToString(serving_schema.serving_schema(
            committed, spec, header, scoring_suite.in_set_mostly(suite))),
        settings.pipeline_root / "_schemas", serving_schema.SCHEMA_FILE, write_files)
    example_gen = _scoring_example_gen(
        spec, serving_schema.column_types(committed, header, spec.unread_columns))
    examples = example_gen.outputs["examples"]
    schema_importer = ImportSchemaGen(schema_file=str(schema_file)).with_id(SCHEMA_IMPORTER)
    # The champion's artifacts, found in the store by uri (not copied: reimport=False).
    model = Importer(source_uri=champion.model_uri, artifact_type=standard_artifacts.Model
                     ).with_id(CHAMPION_MODEL)
    training_statistics = Importer(
        source_uri=champion.statistics_uri, artifact_type=standard_artifacts.ExampleStatistics
    ).with_id(CHAMPION_STATISTICS)

    source = f"{suite_path} (the expectations that apply to a file to score)"
    suite_loading.parse_suite(suite, spec, source)  # a broken suite fails here
    expectations_validator = GreatExpectationsValidator(
        examples=examples, suite=json.dumps(suite), suite_source=source,
        spec=json.dumps(spec.to_config()),
        code_fingerprint=stage_fingerprint(EXPECTATIONS_VALIDATOR),
    ).with_id(EXPECTATIONS_VALIDATOR)
    expectations_gate = ExpectationsGate(
        validation=expectations_validator.outputs["report"],
        code_fingerprint=stage_fingerprint(EXPECTATIONS_GATE)).with_id(EXPECTATIONS_GATE)
    statistics_gen = StatisticsGen(
        examples=examples, code_fingerprint=stage_fingerprint(STATISTICS_GEN),
        columns=serving_schema.statistics_columns(header, spec.unread_columns),
    ).with_id(STATISTICS_GEN)
    statistics_gen.add_upstream_node(expectations_gate)
    statistics = statistics_gen.outputs["statistics"]
    validator = serving_schema.ServingExampleValidator(
        statistics=statistics, schema=schema_importer.outputs["schema"],
        code_fingerprint=stage_fingerprint(SERVING_VALIDATOR)).with_id(SERVING_VALIDATOR)
    anomalies_gate = AnomaliesGate(
        anomalies=validator.outputs["anomalies"],
        code_fingerprint=stage_fingerprint(ANOMALIES_GATE)).with_id(ANOMALIES_GATE)

    baseline = training_statistics.outputs["result"]
    drift_validator = DistributionValidator(
        statistics=statistics, baseline_statistics=baseline,
        config=drift.distribution_config(spec, drift.checked_columns(spec, committed, header)),
        include_split_pairs=[(SCORE_SPLIT, DROP_DRIFT_SPLIT)],
    ).with_id(DRIFT_VALIDATOR)
    drift_gate = drift.DriftGate(
        anomalies=drift_validator.outputs["anomalies"], statistics=statistics,
        baseline_statistics=baseline, critical_columns=json.dumps(list(spec.drift.critical)),
        code_fingerprint=stage_fingerprint(DRIFT_GATE), label=spec.label,
    ).with_id(DRIFT_GATE)

    key, column = output_key(spec.task), output_column(spec.task)
    # TFX's BulkInferrer with a batched executor (components/score/bulk_inference.py).
    inferrer = bulk_inference.BulkInferrer(
        examples=examples, model=model.outputs["result"],
        data_spec=bulk_inferrer_pb2.DataSpec(example_splits=[SCORE_SPLIT]),
        model_spec=bulk_inferrer_pb2.ModelSpec(model_signature_name=[SERVING_DEFAULT]),
        output_example_spec=bulk_inferrer_pb2.OutputExampleSpec(output_columns_spec=[
            bulk_inferrer_pb2.OutputColumnsSpec(predict_output=bulk_inferrer_pb2.PredictOutput(
                output_columns=[bulk_inferrer_pb2.PredictOutputCol(output_key=key,
                                                                   output_column=column)]))]),
        code_fingerprint=stage_fingerprint(BULK_INFERRER),
    ).with_id(BULK_INFERRER)
    writer = PredictionsWriter(
        examples=inferrer.outputs["output_examples"], csv_path=str(spec.csv_path),
        classes=json.dumps(list(spec.classes)), task=spec.task,
        csv_sha256=file_sha256(spec.csv_path),
        code_fingerprint=stage_fingerprint(PREDICTIONS_WRITER),
    ).with_id(PREDICTIONS_WRITER)

    evaluation = []
    if spec.label in header:  # labelled rows: the Evaluator's metrics on them too
        evaluator = Evaluator(
            examples=examples, model=model.outputs["result"], example_splits=[SCORE_SPLIT],
            eval_config=make_eval_config(spec, settings,
                                         module_fingerprint=stage_fingerprint(EVALUATOR)),
            module_path=EVALUATOR_MODULE,
        ).with_id(EVALUATOR)
        evaluator.add_upstream_node(inferrer)
        evaluation.append(evaluator)
    # Nothing is evaluated before every check passed. The inference and the scored file, both
    # into the pipeline root, run beside the checks: the file goes under scores/ only when the
    # whole run succeeded (pipeline/runners/scores_folder.py), so a failed gate still leaves
    # nothing there. Writing 1.5M rows took ~9 s that the run spent after the gates.
    for node in evaluation:
        for gate in (anomalies_gate, expectations_gate, drift_gate):
            node.add_upstream_node(gate)
    return _pipeline(settings, [
        example_gen, schema_importer, model, training_statistics, expectations_validator,
        expectations_gate, statistics_gen, validator, anomalies_gate, drift_validator, drift_gate,
        inferrer, *evaluation, writer,
    ], name_suffix=SCORING_SUFFIX, write_files=write_files)
