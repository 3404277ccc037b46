"""MLflow logging while the run goes (pipeline/tracking/live_tracking.py), on a real MLflow store
and a real ML Metadata store holding a two-stage run: a stage is logged as it ends, finish()
logs the rest and leaves nothing RUNNING, and whatever the worker raises reaches the caller
with the pipeline's run FAILED. No pipeline runs: ~10 s, most of it making the MLflow store."""
from __future__ import annotations

import time

import pytest
from ml_metadata.proto import metadata_store_pb2

import mlmd_records
from conftest import process_alive
from pipeline.config.settings import Settings
from pipeline.mlmd import queries
from pipeline.tracking import live_tracking, run_logging
from pipeline.tracking.mlflow_store import TRACKING_URI_ENV, tracking_uri

STAGES = ("StageA", "StageB")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One output folder for the module: its MLflow store is made once (seconds)."""
    return Settings(dataset="penguins", output_root=tmp_path_factory.mktemp("live"))


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)


def _record_run(settings: Settings, run_id: str) -> list[queries.NodeExecution]:
    """Two finished stage executions of TFX run `run_id` in the output folder's ML Metadata,
    with the contexts TFX gives them (pipeline, pipeline run, node)."""
    for stage in STAGES:
        mlmd_records.record(settings.metadata_path, settings.full_pipeline_name, run_id, stage,
                            queries.COMPLETE)
    return queries.run_executions(mlmd_records.open_store(settings.metadata_path),
                                  settings.full_pipeline_name, run_id)


def _client(settings: Settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri(settings))


def _stage_runs(client, parent: str) -> dict:
    runs = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.`{run_logging.TAG_PARENT}` = '{parent}'")
    return {r.data.tags[run_logging.TAG_NODE]: r for r in runs}


def _wait_for_stage_run(client, settings: Settings, run_id: str, stage: str):
    """The pipeline's run and `stage`'s run under it, once the worker has logged them."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(settings.full_pipeline_name)
        if experiment is not None:
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{run_logging.TAG_PIPELINE_RUN}` = '{run_id}'")
            parents = [r for r in runs if run_logging.TAG_PARENT not in r.data.tags]
            if parents and stage in _stage_runs(client, parents[0].info.run_id):
                return parents[0]
        time.sleep(0.2)
    raise AssertionError(f"{stage} was not logged while the run went on")


def test_a_run_stopped_before_any_stage_ran_is_logged_after_the_fact(settings):
    """Nothing reported: finish() logs it all from ML Metadata (here: no TFX run at all), and
    the experiment it creates keeps its artifacts in the output folder's store, not ./mlruns."""
    from pipeline.tracking.mlflow_store import artifact_root

    tracker = live_tracking.LiveTracker(settings, settings.load_spec(), "run-0",
                                        int(time.time() * 1000)).start()
    tracked = tracker.finish(None, RuntimeError("no CSV"))
    client = _client(settings)
    parent = client.get_run(tracked.run_id)
    assert (tracked.status, parent.info.status) == ("FAILED", "FAILED")
    assert parent.data.tags[run_logging.TAG_PIPELINE_RUN] == "none"
    assert parent.data.tags[run_logging.TAG_ERROR] == "RuntimeError: no CSV"
    assert client.get_experiment(tracked.experiment_id).artifact_location == \
        artifact_root(settings)


def test_a_stage_is_logged_as_it_ends_and_finish_logs_the_rest(settings):
    first, second = _record_run(settings, "run-1")
    spec = settings.load_spec()
    tracker = live_tracking.LiveTracker(settings, spec, "run-1", int(time.time() * 1000))
    tracker.start().stage_finished(first)
    tracker.drain()
    client = _client(settings)
    # The run goes on: StageA's run is there, the pipeline's still RUNNING, StageB not yet.
    parent = _wait_for_stage_run(client, settings, "run-1", first.node_id)
    assert parent.info.status == "RUNNING"
    assert set(_stage_runs(client, parent.info.run_id)) == {first.node_id}

    tracked = tracker.finish("run-1")  # StageB never reported: logged from ML Metadata

    assert tracked.status == "FINISHED" and list(tracked.children) == list(STAGES)
    stage_runs = _stage_runs(client, tracked.run_id)
    assert {n: r.info.status for n, r in stage_runs.items()} == dict.fromkeys(STAGES, "FINISHED")
    assert {n: r.data.tags[run_logging.TAG_STATE] for n, r in stage_runs.items()} == \
        dict.fromkeys(STAGES, "ran")
    parent = client.get_run(tracked.run_id)
    assert parent.info.status == "FINISHED"
    assert {f"duration_s/{s}" for s in STAGES} <= set(parent.data.metrics)
    # The data: one input for the whole CSV (no statistics in this run), on the run.
    assert [i.dataset.name for i in parent.inputs.dataset_inputs] == [spec.name]


def _record_cached_stage(settings: Settings, made_in: str, run_id: str) -> tuple[int, object]:
    """StageA ran in TFX run `made_in` and wrote an artifact; in run `run_id` it came from the
    cache (TFX links the reused artifact as the cached execution's output). Returns the first
    execution's id and the cached node."""
    store = mlmd_records.open_store(settings.metadata_path)
    pipeline = settings.full_pipeline_name
    contexts = {(kind, name): store.get_context_by_type_and_name(kind, name) or
                store.get_contexts_by_id(store.put_contexts([metadata_store_pb2.Context(
                    type_id=store.get_context_type(kind).id, name=name)]))[0]
                for kind, name in (("pipeline", pipeline), ("pipeline_run", made_in),
                                   ("pipeline_run", run_id), ("node", f"{pipeline}.StageA"))}
    artifact_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    execution_type = store.get_execution_type("x.Stage").id
    artifact = metadata_store_pb2.Artifact(type_id=artifact_type, uri="/nowhere/examples",
                                           state=metadata_store_pb2.Artifact.LIVE)
    ids = []
    for run, state in ((made_in, queries.COMPLETE), (run_id, queries.CACHED)):
        output = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
        output.path.steps.add().key = "examples"
        output.path.steps.add().index = 0
        execution_id, [artifact.id], _ = store.put_execution(
            metadata_store_pb2.Execution(type_id=execution_type, last_known_state=state),
            [(artifact, output)],
            [contexts[("pipeline", pipeline)], contexts[("pipeline_run", run)],
             contexts[("node", f"{pipeline}.StageA")]])
        ids.append(execution_id)
    [cached] = queries.run_executions(store, pipeline, run_id)
    return ids[0], cached


def test_a_cached_stage_is_logged_as_reported_with_the_execution_that_made_its_outputs(settings):
    _record_run(settings, "run-c0")  # the types and contexts
    producer, cached = _record_cached_stage(settings, "run-c1", "run-c2")
    assert cached.execution.last_known_state == queries.CACHED
    tracker = live_tracking.LiveTracker(settings, settings.load_spec(), "run-c2",
                                        int(time.time() * 1000))
    tracker.start().stage_finished(cached)
    tracker.drain()
    client = _client(settings)

    parent = _wait_for_stage_run(client, settings, "run-c2", "StageA")
    assert parent.info.status == "RUNNING"  # logged before finish()
    stage = _stage_runs(client, parent.info.run_id)["StageA"]
    assert stage.data.tags[run_logging.TAG_STATE] == "cached"
    assert stage.data.tags[run_logging.TAG_CACHED_FROM_EXECUTION] == str(producer)
    assert stage.data.tags[run_logging.TAG_CACHED_FROM] == "not tracked"

    tracked = tracker.finish("run-c2")
    assert tracked.status == "FINISHED" and list(tracked.children) == ["StageA"]
    assert tracked.children["StageA"] == stage.info.run_id  # logged once, not again by finish


def test_what_the_worker_raises_reaches_finish_and_fails_the_pipeline_run(settings):
    first, _ = _record_run(settings, "run-2")
    tracker = live_tracking.LiveTracker(settings, settings.load_spec(), "run-2",
                                        int(time.time() * 1000)).start()
    tracker.stage_finished(first)
    tracker.drain()
    client = _client(settings)
    parent = _wait_for_stage_run(client, settings, "run-2", first.node_id)
    # A stage the worker cannot read (no execution): it raises outside any stage's recording.
    tracker.stage_finished(queries.NodeExecution("Broken", "ran", None, {}))

    with pytest.raises(AttributeError):
        tracker.finish("run-2")

    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags[run_logging.TAG_TRACKING_ERROR].startswith("AttributeError")
    assert client.search_runs([parent.info.experiment_id], "attributes.status = 'RUNNING'") == []


def test_a_store_that_cannot_be_opened_fails_finish(settings, monkeypatch, tmp_path):
    """The worker opens the store as the run starts; its error waits for finish()."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(TRACKING_URI_ENV, f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}")
    tracker = live_tracking.LiveTracker(settings, settings.load_spec(), "run-3",
                                        int(time.time() * 1000)).start()
    with pytest.raises(Exception, match="file"):  # MLflow cannot make or open the store there
        tracker.finish(None)


@pytest.mark.parametrize("fork", [False, True], ids=["started", "forked"])
def test_a_pipeline_killed_outright_leaves_its_run_killed_not_running(settings, tmp_path, fork):
    """SIGKILL gives the pipeline no chance to call finish(): the worker, a process of its
    own (at a lower priority), sees its pipe close and ends the runs KILLED. The same for a
    worker forked from the pipeline's process (as in a warm worker's child,
    pipeline/runners/warm_reruns.py)."""
    import os
    import signal
    import subprocess
    import sys

    _record_run(settings, "run-4")
    script = tmp_path / "pipeline_stand_in.py"
    script.write_text(
        "import sys, time\n"
        "from pipeline.config.settings import Settings\n"
        "from pipeline.mlmd import queries\n"
        "from pipeline.tracking import live_tracking\n"
        f"settings = Settings(dataset='penguins', output_root={str(settings.output_root)!r})\n"
        "with queries.open_store_context(settings.metadata_path) as store:\n"
        "    first = queries.run_executions(store, settings.full_pipeline_name, 'run-4')[0]\n"
        "tracker = live_tracking.LiveTracker(settings, settings.load_spec(), 'run-4', "
        f"int(time.time() * 1000), fork={fork}).start()\n"
        "tracker.stage_finished(first)\n"
        "tracker.drain()\n"
        "print(tracker._process.pid, flush=True)\n"  # noqa: SLF001 - the worker's pid
        "time.sleep(600)\n")
    stand_in = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker_pid = int(stand_in.stdout.readline())
        assert worker_pid != stand_in.pid  # the logging runs beside the pipeline, not in it
        with open(f"/proc/{worker_pid}/cmdline", "rb") as f:  # a fork keeps its parent's
            assert (str(script).encode() in f.read()) is fork
        assert os.getsid(worker_pid) == worker_pid  # a session of its own: no Ctrl-C
        # Below the pipeline's priority: the stages get the cores first.
        assert os.getpriority(os.PRIO_PROCESS, worker_pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, stand_in.pid) + live_tracking.NICENESS)
        client = _client(settings)
        parent = _wait_for_stage_run(client, settings, "run-4", STAGES[0])
        assert parent.info.status == "RUNNING"
        os.kill(stand_in.pid, signal.SIGKILL)
    finally:
        stand_in.kill()
        stand_in.wait()
    deadline = time.monotonic() + 60
    while client.get_run(parent.info.run_id).info.status == "RUNNING":
        assert time.monotonic() < deadline, "the pipeline's run stayed RUNNING"
        time.sleep(0.2)
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    assert client.search_runs([parent.info.experiment_id],
                              "attributes.status = 'RUNNING'") == []
    deadline = time.monotonic() + 30
    while process_alive(worker_pid):  # and the worker has ended
        assert time.monotonic() < deadline, "the worker outlived its pipeline"
        time.sleep(0.1)


def test_the_worker_says_whether_the_champion_alias_points_at_the_runs_model(settings):
    """A cached re-run promotes nothing (model.champion False) while its model may still be the
    champion: the worker asks the registry, so the pipeline's process need not load MLflow
    for last_success.json (run_record.record_success)."""
    from pipeline.tracking import pipeline_runs, registry
    from pipeline.tracking.mlflow_store import active_store

    name = "live-champion"
    with active_store(settings) as client:
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=settings.output_root.as_uri())
        client.set_registered_model_alias(name, registry.CHAMPION, "1")

        def tracked(version: str) -> pipeline_runs.TrackedRun:
            model = registry.RegisteredVersion(name, version, blessed=True, created=False,
                                               champion=False)
            return pipeline_runs.TrackedRun("r", "1", "uri", "FINISHED", {}, model)

        champion, other = tracked("1"), tracked("2")
        for run in (champion, other):
            live_tracking._ask_champion(client, run)  # noqa: SLF001
    assert (champion.champion_now, other.champion_now) == (True, False)
    no_model = pipeline_runs.TrackedRun("r", "1", "uri", "FINISHED", {})
    live_tracking._ask_champion(None, no_model)  # noqa: SLF001 - nothing to ask
    assert no_model.champion_now is None
