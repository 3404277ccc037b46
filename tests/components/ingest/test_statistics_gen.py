"""Our StatisticsGen executor (components/ingest/statistics_gen.py) gives TFX's statistics and
output artifact, reading the examples in batches instead of one Beam element per example."""
from __future__ import annotations

import math

import pytest
from conftest import DATA, write_csv_sample
from example_gen_runs import run_example_gen
from google.protobuf import json_format
from tensorflow_data_validation.utils import stats_util
from tfx.components.statistics_gen import executor as tfx_statistics_executor
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from components.ingest import example_batches
from components.ingest import executor as ingest_executor
from components.ingest import statistics_gen
from pipeline.config.settings import Settings
from pipeline.runners.beam_packaging import no_tfx_package_for_local_workers


def _run(executor_class, examples, out):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(out)
    context = BaseBeamExecutor.Context(beam_pipeline_args=["--runner=DirectRunner"],
                                       tmp_dir=str(out / ".tmp"))
    with no_tfx_package_for_local_workers(Settings(output_root=out)):
        executor_class(context).Do({"examples": [examples]}, {"statistics": [statistics]},
                                   {"exclude_splits": json_utils.dumps([])})
    return statistics


def _stats(statistics, split):
    path = f"{statistics.uri}/Split-{split}/FeatureStats.pb"
    return json_format.MessageToDict(stats_util.load_stats_binary(path))


def _assert_same(ours, theirs, where="stats"):
    """Equal, but floats to 1e-12 relative: TFDV sums means and variances in batch order."""
    assert type(ours) is type(theirs), where
    if isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), where
        for key in ours:
            _assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(ours, float) and not (math.isnan(ours) and math.isnan(theirs)):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), where
    else:
        assert ours == theirs, where


@pytest.mark.e2e  # runs both executors for real (Beam)
def test_statistics_equal_tfxs_on_taxi(tmp_path, monkeypatch):
    csv = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "taxi" / "data.csv",
                           rows=3000)
    run_example_gen(ingest_executor.Executor, csv, tmp_path / "examples")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = '["train", "eval"]'
    read = []  # the files our executor read in batches (the DirectRunner runs in this process)
    batches = example_batches.read_batches
    monkeypatch.setattr(example_batches, "read_batches",
                        lambda files, rows: read.extend(files) or batches(files, rows))
    ours = _run(statistics_gen.Executor, examples, tmp_path / "ours")
    assert len(read) == 2  # one file per split
    theirs = _run(tfx_statistics_executor.Executor, examples, tmp_path / "theirs")
    assert ours.split_names == theirs.split_names == '["train", "eval"]'
    assert ours.get_json_value_custom_property("sample_rate_by_split") == \
        theirs.get_json_value_custom_property("sample_rate_by_split")
    for split in ("train", "eval"):
        mine, stock = _stats(ours, split), _stats(theirs, split)
        assert int(mine["datasets"][0]["numExamples"]) > 600
        _assert_same(mine, stock)
    # TFX's own reader is back once the executor is done.
    from tfx.components.util import tfxio_utils
    assert tfxio_utils.get_split_tfxio is statistics_gen._stock_get_split_tfxio
