"""Run the pipeline locally with LocalDagRunner: live summary on the terminal, full log in a file."""
from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Collection, TextIO

from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.console.wall_clock import process_seconds
from pipeline.runners import last_run, run_record, termination


def _run(make_pipeline, settings: Settings, out: TextIO, run_id: str,
         on_stage_end=None, checks: Collection[str] = (),
         warm_imports: Collection[str] = (), on_built=None) -> None:
    """on_stage_end: called with each finished stage's execution (live_tracking.py); checks:
    the nodes to run beside the others, warm_imports: what their process imports while it
    waits for their inputs (check_branch.py); on_built: called once the pipeline is built (its
    stages' modules imported), before anything else starts."""
    from pipeline.console.output_capture import captured_output

    # Imports happen inside the capture: TensorFlow prints its CUDA/oneDNN lines on import.
    with captured_output(settings.log_path) as terminal:
        from pipeline.console.stage_summary import StageReporter
        from pipeline.mlmd import lock_retry
        from pipeline.runners import check_branch, import_gc
        from pipeline.runners.beam_in_process import levers_for_beam

        lock_retry.install()  # the checks' process, forked below, shares the store
        with import_gc.collected_once():
            pipeline = make_pipeline()
        # Full passes of the collector skip the set-up's objects until the run ends
        # (import_gc.frozen), here and in the processes forked from here on.
        with import_gc.frozen():
            if on_built is not None:
                on_built()
            reporter = StageReporter(settings.metadata_path, pipeline.pipeline_info.pipeline_name,
                                     terminal if out is sys.stdout else out, run_id=run_id,
                                     on_finished=functools.partial(_stage_ended, on_stage_end))
            logger = logging.getLogger("absl")
            logger.addHandler(reporter)
            def check_ended(node_id: str, seconds: float) -> None:
                """A check that ran in the other process: its line, then the tracking (not
                _stage_ended: what the stage freed was that process's memory)."""
                node = reporter.report(node_id, seconds)
                if on_stage_end is not None:
                    on_stage_end(node)

            branch = check_branch.Branch(
                ended=check_ended,
                failed=reporter.report_failed,
                stopped=functools.partial(_stage_stopped, reporter, settings,
                                          pipeline.pipeline_info.pipeline_name, run_id))
            try:
                with levers_for_beam(settings):
                    check_branch.run_with_ir(_pipeline_ir(pipeline, run_id), _run_options(settings),
                                             checks, branch, warm_imports)
            except BaseException as error:
                reporter.report_failure()
                stop = termination.interruption_behind(error)
                if stop is not None:  # a Ctrl-C that Beam re-raised as a RuntimeError
                    raise stop from error
                raise
            finally:
                logger.removeHandler(reporter)


def _stage_stopped(reporter, settings: Settings, pipeline_name: str, run_id: str) -> None:
    """The stage running here was stopped for a check that failed beside it: its line, and
    its ML Metadata record CANCELED (then its MLflow stage run ends KILLED, not FAILED)."""
    from pipeline.mlmd.stopped_stage import record_stopped

    node_id = reporter.current
    reporter.report_failure("stopped", "for the check that failed")
    if node_id is None:
        return
    try:
        record_stopped(settings.metadata_path, pipeline_name, node_id, run_id)
    except Exception:  # noqa: BLE001 - the check's error is the run's; this only says it better
        logging.getLogger(__name__).exception("could not record %s as stopped", node_id)


def _stage_ended(then, node) -> None:
    """After each stage: what it freed goes back to the system (heap_trim.py), so the next
    stage's peak does not stand on it; then `then` (the live MLflow tracking); then a Ctrl-C or
    SIGTERM that a callback swallowed during the stage stops the run here (termination.py)."""
    from pipeline.runners.heap_trim import release_freed_memory

    release_freed_memory()
    if then is not None:
        then(node)
    termination.raise_if_lost()


def _pipeline_ir(pipeline, run_id: str):
    """The compiled pipeline with its run id set here rather than by LocalDagRunner (which
    would use its own start time): the output-folder lock's holder line, the live summary and
    MLflow tracking then know this run's id before TFX starts, and read only its executions."""
    from tfx.dsl.compiler import constants
    from tfx.orchestration.portable import runtime_parameter_utils
    from tfx.orchestration.portable.tfx_runner import (
        _make_pipeline_proto,  # what run() does
    )

    ir = _make_pipeline_proto(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    return ir


def _run_options(settings: Settings):
    """A partial run up to `settings.until`: that node and everything upstream of it."""
    if not settings.until:
        return None
    from tfx.orchestration.pipeline import RunOptions
    from tfx.orchestration.portable.tfx_runner import _run_opts_to_proto

    return _run_opts_to_proto(RunOptions(to_nodes=[settings.until]))


def _warm_note() -> str:
    """A header line when a warm worker's child runs the command (pipeline/runners/warm_reruns.py)."""
    from pipeline.runners import warm_reruns

    if not warm_reruns.in_worker():
        return ""
    return (f"  warm worker: TensorFlow, TFX and the rest were imported already (worker pid "
            f"{os.getppid()})\n")


def write_header(settings: Settings, spec, out: TextIO | None = None) -> None:
    """The run's first lines: the pipeline and its CSV, the log file, the Beam runner."""
    out = out or sys.stdout  # the stream as called: a default would be bound at import
    out.write(f"Pipeline {settings.full_pipeline_name}: {spec.csv_path}\n"
              f"  full log: {settings.log_path}\n"
              f"  Beam: {_beam_description(settings)}\n{_warm_note()}")
    if settings.until:
        out.write(f"  until {settings.until}: the stages after it do not run\n")
    out.flush()


def run_pipeline(settings: Settings, out: TextIO | None = None,
                 run_id: str | None = None, header_written: bool = False) -> None:
    """The full pipeline; raises on the first failed stage (after the summary shows it).
    The caller holds the output folder (runners/run_lock.py); run_id: the TFX run id to use;
    header_written: the caller wrote the first lines (write_header) already."""
    out = out or sys.stdout  # the stream as called: a default would be bound at import
    from pipeline.runners.run_lock import new_run_id

    run_id = run_id or new_run_id()
    spec = settings.load_spec()
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    # The inputs as this run starts (what its stages will read), for the next run's check.
    inputs = last_run.fingerprint(settings, spec)
    if not header_written:
        write_header(settings, spec, out)

    def make_pipeline():
        from pipeline.definition.builder import create_pipeline

        return create_pipeline(settings, spec)

    started_ms = int(time.time() * 1000)
    tracker = None
    try:
        # MLflow logging while the stages run (the store opened, each stage logged as it ends).
        tracker = _live_tracker(settings, spec, run_id, started_ms)
        _run(make_pipeline, settings, out, run_id,
             on_stage_end=tracker.stage_finished if tracker else None,
             checks=stage_names.CHECKS, warm_imports=_contract_imports(settings, inputs),
             on_built=functools.partial(_start_tracker, tracker))
    except BaseException as error:  # Ctrl-C too: its MLflow run must not stay RUNNING
        _track(settings, spec, run_id, started_ms, out, error, tracker)
        raise
    _report_drift(settings, settings.full_pipeline_name, run_id, out)
    tracked = _track(settings, spec, run_id, started_ms, out, tracker=tracker)
    if not settings.until:
        run_record.record_success(settings, inputs, tracked, tfx_run=run_id)
    out.write(f"Done in {process_seconds():.0f}s. Outputs in {settings.output_dir}/\n"
              f"  serving models: {settings.serving_dir}\n"
              f"  pipeline root:  {settings.pipeline_root}\n"
              f"  ML Metadata:    {settings.metadata_path}\n")


# What the data contract's stage imports when it runs (components/contract/suite_validation.py).
CONTRACT_IMPORTS = ("great_expectations",)
# Inputs whose change re-runs the data contract's stage: its examples, the spec, the suite.
_CONTRACT_INPUTS = ("csv", "spec", "schema", "suite")
# The import ahead is for small files, where it is most of the contract stage (penguins: 3.5-4.6
# s -> 0.6-0.9 s). On a large one it is a small share: scoring 1.5M taxi rows with it, the
# contract stage took 20.8 s against 21.8 s, but the statistics after it 12.4-13.2 s against
# 8.7 s and the run 52.8-53.2 s against 49.4 s (2026-12-06, by hand). Not done above this size.
# (The 41.4 s contract stages first blamed on it came back without it: see docs/scoring.md.)
WARM_IMPORT_MAX_BYTES = 64 << 20


def _contract_imports(settings: Settings, inputs: dict[str, str] | None) -> tuple[str, ...]:
    """CONTRACT_IMPORTS when the contract's stage will run on a small file (no earlier success,
    or its data or suite changed since; inputs None: a file to score), else none: a re-run that
    changes only a setting (`--epochs`) serves the contract from the cache, and an import there
    would take the core the Trainer uses."""
    if settings.input_bytes() > WARM_IMPORT_MAX_BYTES:
        return ()
    last = last_run.load(settings) if inputs is not None else None
    if last is not None and all(last.fingerprint.get(k) == inputs.get(k)
                                for k in _CONTRACT_INPUTS):
        return ()
    return CONTRACT_IMPORTS


def _beam_description(settings: Settings) -> str:
    if settings.beam_runner != "DirectRunner":
        return settings.beam_runner
    mode = settings.resolved_beam_mode()
    if settings.beam_mode == "auto":
        return (f"DirectRunner {mode} (auto: {settings.input_bytes() / 2**20:.1f} MB of CSV, "
                f"{os.cpu_count()} cores; --beam-mode to choose)")
    return f"DirectRunner {mode}"


def _live_tracker(settings: Settings, spec, run_id: str, started_ms: int):
    """The run's MLflow tracking (live_tracking.py). In a warm worker's child, started now as a
    fork, with MLflow imported already; otherwise started by _start_tracker once the pipeline
    is built."""
    from pipeline.tracking import live_tracking

    tracker = live_tracking.LiveTracker(settings, spec, run_id, started_ms)
    if _may_fork_imported():
        tracker.start(fork=True)
    return tracker


def _start_tracker(tracker) -> None:
    """Start the tracking process as a fork of this one once the pipeline is built, when that is
    safe (as for the checks' process): it inherits TensorFlow, TFMA and TFDV, imported by the
    build, which its stage records read the Evaluator's and StatisticsGen's outputs with. Started
    as a new process at the run's start instead, it imported them again beside the set-up: of a
    penguin run's 25.6 s of CPU, 9.1 s were that process's, ~4 s of them those imports
    (2026-12-06, py-spy and /proc), and on a loaded machine, or in `make test` running two
    pipelines at once, they took CPU the stages wanted. A fork that is not safe (a Python thread
    running, TensorFlow's runtime started: warm_worker.fork_unsafe_now) starts a new process,
    as before."""
    from pipeline.runners import warm_worker

    tracker.start(fork=warm_worker.fork_unsafe_now() is None)


def _may_fork_imported() -> bool:
    """Whether this process is a warm worker's child that may fork now (only the native pools'
    threads, TensorFlow's runtime not started: warm_worker.fork_unsafe)."""
    from pipeline.runners import warm_reruns, warm_worker

    return warm_reruns.in_worker() and warm_worker.fork_unsafe_now() is None


def _track(settings: Settings, spec, run_id: str, started_ms: int, out: TextIO,
           error: BaseException | None = None, tracker=None):
    """Log the run to MLflow (what the live tracker has not logged yet, and wait for it), with
    MLflow's own output going to the log file like the rest.

    After a failed run, a tracking failure is only logged: the pipeline's error is the one to
    report. After a successful run it propagates: an untracked run is a failed `make pipeline`."""
    from pipeline.console.output_capture import captured_output
    from pipeline.tracking import lineage, pipeline_runs

    tracked = None
    with captured_output(settings.log_path):
        try:
            # None when the run failed before TFX recorded it (nothing of it in ML Metadata).
            tfx_run = run_id if run_id in lineage.tfx_run_ids(settings) else None
            if tracker is not None:
                tracked = tracker.finish(tfx_run, error)
            else:
                tracked = pipeline_runs.log_pipeline_run(
                    settings, spec, tfx_run, error=error, started_ms=started_ms)
        except Exception:
            if error is None:
                raise
            logging.getLogger(__name__).exception("MLflow tracking of the failed run failed")
    if tracked is not None:
        out.write(tracked.summary())
        out.flush()
    return tracked


def draft_schema(settings: Settings, out: TextIO | None = None,
                 run_id: str | None = None) -> Path:
    """Run CsvExampleGen -> StatisticsGen -> SchemaGen and copy the inferred schema out for review."""
    out = out or sys.stdout  # the stream as called: a default would be bound at import
    import shutil

    from pipeline.console.output_capture import captured_output
    from pipeline.mlmd import queries
    from pipeline.runners.run_lock import new_run_id

    with captured_output(settings.log_path):  # TensorFlow prints CUDA/oneDNN lines on import
        from pipeline.definition import builder
    run_id = run_id or new_run_id()
    spec = settings.load_spec()
    out.write(f"Drafting a schema for {spec.name} from {spec.csv_path}\n")
    _run(lambda: builder.create_schema_draft_pipeline(settings, spec), settings, out, run_id)
    with queries.open_store_context(settings.metadata_path) as store:
        node = queries.node_execution(store, settings.full_pipeline_name + "-schema",
                                       builder.SCHEMA_GEN, run_id)
    draft = settings.output_dir / "schema_draft" / "schema.pbtxt"
    draft.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(node.outputs["schema"][0].uri) / "schema.pbtxt", draft)
    _new_values_as_the_contract_allows(draft)
    out.write(f"Draft schema: {draft}\nReview it, then copy it to {spec.schema_path}\n")
    return draft


def _new_values_as_the_contract_allows(schema_file: Path) -> None:
    """A column with a value list in the drafted schema lets as many of its values be new as
    the drafted contract's value-set expectation does (suite_draft.CATEGORY_MOSTLY): SchemaGen
    leaves TFDV's default of none, so one new company among thousands of rows of a new training
    drop stopped the run at the AnomaliesGate while the contract let it pass."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.contract.suite_draft import CATEGORY_MOSTLY
    from components.score.schema_types import allow_unseen_values

    schema = text_format.Parse(schema_file.read_text(), schema_pb2.Schema())
    for feature in schema.feature:
        allow_unseen_values(feature, CATEGORY_MOSTLY)
    schema_file.write_text(text_format.MessageToString(schema))


def score_file(settings: Settings, out: TextIO | None = None, run_id: str | None = None) -> Path:
    """`make score`: the scoring pipeline on settings.csv with the champion model; the scored
    file is published under outputs/<dataset>/scores/<timestamp>/ when the run succeeded. The
    caller holds the output folder. Raises on the first failed stage (after the summary)."""
    out = out or sys.stdout  # the stream as called: a default would be bound at import
    from pipeline.config.stage_names import SCORING_SUFFIX
    from pipeline.console.output_capture import captured_output
    from pipeline.runners import scores_folder
    from pipeline.runners.run_lock import new_run_id
    from pipeline.tracking import scoring_runs

    run_id = run_id or new_run_id()
    settings = settings.replace(until="")  # `--until` names the training pipeline's stages
    spec = settings.load_spec()
    with captured_output(settings.log_path):
        champion = scoring_runs.resolve_champion(settings)
    out.write(f"Scoring {spec.csv_path} with {champion.describe()}\n"
              f"  full log: {settings.log_path}\n"
              f"  Beam: {_beam_description(settings)}\n{_warm_note()}")
    out.flush()
    pipeline_name = settings.full_pipeline_name + SCORING_SUFFIX

    def make_pipeline():
        from pipeline.definition.builder import create_scoring_pipeline

        return create_scoring_pipeline(settings, spec, champion)

    started_ms = int(time.time() * 1000)
    published, error = None, None
    try:
        _run(make_pipeline, settings, out, run_id, checks=stage_names.SCORING_CHECKS,
             warm_imports=_contract_imports(settings, None))
        published = scores_folder.publish(settings, _scored_csv(settings, pipeline_name, run_id))
    except BaseException as e:
        error = e
        raise
    finally:
        record = _scoring_record(settings, pipeline_name, run_id)
        _report_drift(settings, pipeline_name, run_id, out, record.drift)
        with captured_output(settings.log_path):
            try:
                mlflow_run = scoring_runs.log_scoring_run(
                    settings, spec, champion, pipeline_name,
                    run_id if record.stages else None, published, record, started_ms, error)
            except Exception:
                if error is None:
                    raise
                logging.getLogger(__name__).exception("MLflow tracking of the scoring run")
                mlflow_run = None
        if mlflow_run:
            out.write(f"MLflow run {mlflow_run} (experiment {pipeline_name})\n")
        if error is not None:  # the writer may have run beside the checks: say where it stays
            out.write(f"Nothing published under {scores_folder.scores_dir(settings)}/ "
                      "(the run did not succeed)\n")
    out.write(f"Scored {record.rows or 0:,} rows in {process_seconds():.0f}s: {published}\n")
    out.flush()
    return published


def _report_drift(settings: Settings, pipeline_name: str, run_id: str, out: TextIO,
                  report: dict | None = None) -> None:
    """After the stage lines: one line per drifted column (a warning: the run went on)."""
    from pipeline.config.stage_names import DRIFT_GATE
    from pipeline.console import summary_figures
    from pipeline.mlmd import queries

    if report is None and pipeline_name and settings.metadata_path.exists():
        with queries.open_store_context(settings.metadata_path) as store:
            node = queries.node_execution(store, pipeline_name, DRIFT_GATE, run_id)
        report = summary_figures.drift_report(node) if node else None
    for line in summary_figures.drift_lines(report or {}):
        out.write(f"  {line}\n")
    out.flush()


def _scoring_record(settings: Settings, pipeline_name: str, run_id: str):
    from pipeline.tracking import scoring_runs

    return scoring_runs.read_record(settings, pipeline_name, run_id)


def _scored_csv(settings: Settings, pipeline_name: str, run_id: str) -> Path:
    from pipeline.config.stage_names import PREDICTIONS_WRITER
    from pipeline.mlmd import queries

    with queries.open_store_context(settings.metadata_path) as store:
        node = queries.node_execution(store, pipeline_name, PREDICTIONS_WRITER, run_id)
    if node is None or node.state not in ("ran", "cached"):
        raise RuntimeError("the PredictionsWriter did not finish: nothing to publish")
    return Path(node.output_property("scored", "path"))
