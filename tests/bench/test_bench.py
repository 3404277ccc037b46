"""The bench's own pieces, in seconds: the scaled-data generator, the pandas baselines, the
measured pipeline run (one stage of the real CLI) and the table. The training and serving
baselines are smoke-run on the end-to-end test's pipeline run (tests/e2e/test_pipeline_e2e.py).

The benchmark itself (`make bench`) runs pipelines for many minutes; nothing here times anything."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import DATA, write_csv_sample
from pipeline.bench import baselines, benchmark
from pipeline.bench import report as bench_report
from pipeline.bench.scaled_csv import write_scaled_csv
from pipeline.config.settings import Settings
from pipeline.mlmd import queries


def test_scaled_csv_streams_realistic_rows(tmp_path):
    spec = Settings().load_spec()
    source = pd.read_csv(spec.csv_path)
    target = write_scaled_csv(spec, 2_500, tmp_path / "x" / "data.csv", seed=1, chunk_rows=1_000)
    scaled = pd.read_csv(target)
    assert len(scaled) == 2_500 and list(scaled.columns) == list(source.columns)
    assert not (tmp_path / "x" / "data.partial").exists()
    # categories in their observed proportions (within sampling noise), no new categories
    assert set(scaled["payment_type"].dropna()) <= set(source["payment_type"].dropna())
    assert abs((scaled["payment_type"] == "Cash").mean()
               - (source["payment_type"] == "Cash").mean()) < 0.05
    # numbers jittered, not copied, and kept inside the observed range; ints stay ints
    assert not scaled["fare"].isin(source["fare"]).all()
    for column in ("fare", "trip_start_timestamp", "pickup_latitude"):  # the schema's ranges
        assert scaled[column].dropna().between(source[column].min(), source[column].max()).all()
    assert (scaled["trip_seconds"].dropna() % 1 == 0).all()
    assert scaled["big_tipper"].isin([0, 1]).all()
    # seeded: the same seed writes the same file
    again = write_scaled_csv(spec, 2_500, tmp_path / "y" / "data.csv", seed=1, chunk_rows=1_000)
    assert again.read_bytes() == target.read_bytes()


def test_pandas_baselines_run_on_a_sample(tmp_path):
    settings = Settings()
    sample = write_scaled_csv(settings.load_spec(), 500, tmp_path / "data.csv", seed=2)
    assert baselines.pandas_statistics(sample) > 0
    assert baselines.pandas_transform(sample, settings) > 0


def test_markdown_table_names_every_figure():
    run = {"wall_seconds": 10.0, "peak_rss_mb": 900.0,
           "stages": {"StatisticsGen": 2.0, "Transform": 4.0},
           "stage_peak_rss_mb": {"StatisticsGen": 700.0, "Transform": 1200.0},
           "states": {}, "stdout": None}
    report = {
        "machine": {"cores": "2", "memory_gib": "24", "cpu": "x86_64", "python": "3.10"},
        "sizes": {"15002": {"rows": 15002, "multi_processing": run, "in_memory": run,
                            "training": {"trainer_examples_per_s": 1000.0,
                                         "keras_examples_per_s": 2000.0, "ratio": 0.5},
                            "pandas_statistics_s": 1.0, "pandas_transform_s": 1.0}},
        "cached_rerun_s": 9.0, "rows100_run_s": 60.0,
        "serving": {"http_1_rows": {"p50_ms": 5.0, "p99_ms": 9.0, "rps": 150.0}},
    }
    table = bench_report.markdown(report)
    for text in ("2 cores, 24 GiB", "| 15,002 | Transform | 4.0 | 3,750 | 1,200 MB | 4.0 |",
                 "| **whole run** | 10.0 | | 900 MB |", "| 0.50 |", "cached re-run takes 9.0 s",
                 "| http 1 rows | 5.0 | 9.0 | 150.0 |"):
        assert text in table, text


def test_measured_run_times_each_stage_and_its_memory(tmp_path):
    """The real CLI on 100 rows, stopped after CsvExampleGen with --until (about 20 s)."""
    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "data.csv", rows=100)
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp_path / "out",
                        beam_mode="in_memory", until="CsvExampleGen")
    run = benchmark.run_pipeline(settings)
    assert run.states == {"CsvExampleGen": "ran"}, run.stdout
    assert "until CsvExampleGen" in run.stdout
    assert run.stages["CsvExampleGen"] > 0 and run.wall_seconds > run.stages["CsvExampleGen"]
    # A process that has imported TensorFlow holds well over 100 MB; the run's peak covers it.
    assert 100 < run.stage_peak_rss_mb["CsvExampleGen"] <= run.peak_rss_mb
    with queries.open_store_context(settings.metadata_path) as store:
        ran = {ctx.name.split(".")[-1] for ctx in store.get_contexts_by_type("node")
               if store.get_executions_by_context(ctx.id)}
    assert ran == {"CsvExampleGen"}


def test_measured_run_that_fails_says_why(tmp_path):
    settings = Settings(dataset="taxi", csv=tmp_path / "missing.csv", output_root=tmp_path)
    with pytest.raises(RuntimeError, match="missing.csv: file not found"):
        benchmark.run_pipeline(settings)


def test_cost_split_separates_start_up_from_per_row_time():
    def size(rows, transform, trainer):
        return {"rows": rows, "multi_processing": {"stages": {
            "Transform": transform, "Trainer": trainer, "Pusher": 0.1}}}

    report = {"sizes": {"10000": size(10_000, 12.0, 5.0), "110000": size(110_000, 22.0, 45.0)}}
    split = bench_report.cost_split(report)
    assert split["Transform"] == pytest.approx((11.0, 10.0))
    assert split["Trainer"] == pytest.approx((1.0, 40.0))
    assert "Pusher" not in split  # too short at every size to say anything
    assert bench_report.cost_split({"sizes": {"10000": size(10_000, 12.0, 5.0)}}) == {}
