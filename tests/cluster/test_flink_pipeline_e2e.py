"""The pipeline end to end with its Beam stages away from the pipeline's process, against the
DirectRunner run of the same data: exit 0, blessed, and the same statistics, transform output
and metrics (within float tolerance).

- `flink`: on a real local Flink cluster this test starts (JobManager and TaskManager JVMs,
  Beam's worker pool), `--beam-runner flink`; the cluster's REST API must list the Beam stages'
  jobs as FINISHED. It needs Beam's Flink job server jar, which `make flink-install` fetches
  from Maven Central; where the registry does not serve it (these machines: 404), it is skipped
  saying so (docs/cluster.md).
- `worker_pool`: Beam's portable runner with its embedded job service and the same worker pool
  (`--environment_type=EXTERNAL`): every Beam stage's work runs in SDK worker processes the
  pool starts, its state pickled to them, as on Flink; what Flink adds is the Java side.

Penguins (344 rows). The DirectRunner run compared with is the session's shared penguin run
(tests/mlflow_runs.py, which the MLflow tests make anyway); the worker pool's run took 116-129 s
on 2 cores at load 4-7 (other engineers' runs alongside).
"""
from __future__ import annotations

import glob
import math
import subprocess
from pathlib import Path

import pytest

from conftest import pipeline_command
from mlflow_runs import FIRST_EPOCHS, clean_env, penguin_runs
from pipeline.cluster import flink_install
from pipeline.cluster.flink_session import local_flink, local_worker_pool
from pipeline.config.settings import Settings
from pipeline.config.stage_names import EVALUATOR, STATISTICS_GEN, TRANSFORM
from pipeline.mlmd import queries

pytestmark = pytest.mark.e2e

REL_TOL = 1e-6


def _run(output_root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--output-root", str(output_root),
                         "--epochs", str(FIRST_EPOCHS), *extra),
        capture_output=True, text=True, timeout=900, env=clean_env())


def _passed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "blessed yes" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> tuple[Settings, str]:
    """The DirectRunner run of the same data and settings: the shared penguin run's first (its
    output folder and TFX run id)."""
    runs = penguin_runs(tmp_path_factory)
    return runs.settings, runs.first_tfx_run


def _outputs(settings: Settings, run_id: str | None = None) -> dict:
    """What the Beam stages made in that run (the only one when None): {stage: output uri}."""
    keys = {STATISTICS_GEN: "statistics", TRANSFORM: "transformed_examples",
            EVALUATOR: "evaluation"}
    with queries.open_store_context(settings.metadata_path) as store:
        return {stage: queries.node_execution(store, settings.full_pipeline_name, stage, run_id)
                .output_uri(key) for stage, key in keys.items()}


def _statistics(uri: str) -> dict:
    """Per split: the row count and, per feature, its counts, min, max, mean, std and unique
    values (histograms and quantiles are sketches whose buckets may depend on input order)."""
    import tensorflow_data_validation as tfdv

    found = {}
    for path in sorted(glob.glob(f"{uri}/Split-*/FeatureStats.pb")):
        dataset = tfdv.load_stats_binary(path).datasets[0]
        features = {}
        for feature in dataset.features:
            name = feature.path.step[0]
            if feature.HasField("num_stats"):
                n = feature.num_stats
                features[name] = (n.common_stats.num_non_missing, n.common_stats.num_missing,
                                  n.min, n.max, n.mean, n.std_dev, n.num_zeros)
            else:
                s = feature.string_stats
                features[name] = (s.common_stats.num_non_missing, s.common_stats.num_missing,
                                  s.unique, tuple(sorted((v.value, v.frequency)
                                                         for v in s.top_values)))
        found[Path(path).parent.name] = (dataset.num_examples, features)
    return found


def _transformed(uri: str) -> dict:
    """Per split, every transformed example as sorted (feature, values) rows, the rows sorted
    (a runner may write them in another order)."""
    import tensorflow as tf

    found = {}
    for split in sorted(glob.glob(f"{uri}/Split-*")):
        rows = []
        for path in sorted(glob.glob(f"{split}/*.gz")):
            for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                example = tf.train.Example.FromString(record.numpy())
                row = []
                for name, feature in sorted(example.features.feature.items()):
                    kind = feature.WhichOneof("kind")
                    values = list(getattr(feature, kind).value) if kind else []
                    row.append((name, tuple(round(v, 5) if isinstance(v, float) else v
                                            for v in values)))
                rows.append(tuple(row))
        found[Path(split).name] = sorted(rows)
    return found


def _metrics(uri: str) -> dict[str, float]:
    from pipeline.console.summary_figures import overall_metrics

    return overall_metrics(uri)


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def _assert_same_results(remote: Settings, direct: tuple[Settings, str]) -> None:
    got, want = _outputs(remote), _outputs(*direct)
    statistics = _statistics(got[STATISTICS_GEN])
    assert statistics and _close(statistics, _statistics(want[STATISTICS_GEN]))
    transformed = _transformed(got[TRANSFORM])
    assert transformed and transformed == _transformed(want[TRANSFORM])
    metrics = _metrics(got[EVALUATOR])
    expected = _metrics(want[EVALUATOR])
    assert metrics.keys() == expected.keys() and metrics
    for name, value in metrics.items():
        assert math.isclose(value, expected[name], rel_tol=1e-4, abs_tol=1e-4), name


def test_on_a_local_flink_cluster_the_results_are_the_direct_runners(request, tmp_path):
    missing = flink_install.missing_job_server()
    if missing:
        pytest.skip(missing)
    direct = request.getfixturevalue("direct")  # after the skip: the shared runs take minutes
    remote = direct[0].replace(output_root=tmp_path / "flink")
    with local_flink(workdir=tmp_path / "cluster") as cluster:
        _passed(_run(remote.output_root, "--beam-runner", "flink", "--beam-master",
                     cluster.master, "--beam-worker-pool", cluster.worker_pool))
        jobs = cluster.jobs()
    # One Flink job per Beam stage run (ingestion, statistics, Transform's analysis and
    # transform, the Evaluator), every one finished.
    assert len(jobs) >= 4 and {job["state"] for job in jobs} == {"FINISHED"}, jobs
    _assert_same_results(remote, direct)


def test_in_the_worker_pools_processes_the_results_are_the_direct_runners(direct, tmp_path):
    remote = direct[0].replace(output_root=tmp_path / "pool")
    log = tmp_path / "worker-pool.log"
    with local_worker_pool(log) as pool:
        _passed(_run(remote.output_root, "--beam-args=--runner=PortableRunner",
                     "--beam-args=--job_endpoint=embed", "--beam-args=--environment_type=EXTERNAL",
                     f"--beam-args=--environment_config={pool}"))
    # Each Beam stage's work ran in SDK workers the pool started (one or more per stage).
    assert log.read_text().count("starting SDK worker") >= 4
    _assert_same_results(remote, direct)
