"""The bench's own pieces, in seconds: the scaled-data generator and the pandas baselines.

The benchmark itself (`make bench`) runs pipelines for many minutes; nothing here times anything."""
from __future__ import annotations

import pandas as pd

from pipeline import bench
from pipeline.data_scale import write_scaled_csv
from pipeline.settings import Settings


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
    assert scaled["fare"].between(source["fare"].min(), source["fare"].max()).all()
    assert (scaled["trip_seconds"].dropna() % 1 == 0).all()
    assert scaled["big_tipper"].isin([0, 1]).all()
    # seeded: the same seed writes the same file
    again = write_scaled_csv(spec, 2_500, tmp_path / "y" / "data.csv", seed=1, chunk_rows=1_000)
    assert again.read_bytes() == target.read_bytes()


def test_pandas_baselines_run_on_a_sample(tmp_path):
    settings = Settings()
    sample = write_scaled_csv(settings.load_spec(), 500, tmp_path / "data.csv", seed=2)
    assert bench.pandas_statistics(sample) > 0
    assert bench.pandas_transform(sample, settings) > 0


def test_markdown_table_names_every_figure():
    run = {"wall_seconds": 10.0, "peak_rss_mb": 900.0,
           "stages": {"StatisticsGen": 2.0, "Transform": 4.0}, "states": {}, "stdout": None}
    report = {
        "machine": {"cores": "2", "memory_gib": "24", "cpu": "x86_64", "python": "3.10"},
        "sizes": {"15002": {"rows": 15002, "multi_processing": run, "in_memory": run,
                            "training": {"trainer_examples_per_s": 1000.0,
                                         "keras_examples_per_s": 2000.0, "ratio": 0.5},
                            "pandas_statistics_s": 1.0, "pandas_transform_s": 1.0}},
        "cached_rerun_s": 9.0, "rows100_run_s": 60.0,
        "serving": {"http_1_rows": {"p50_ms": 5.0, "p99_ms": 9.0, "rps": 150.0}},
    }
    table = bench.markdown(report)
    for text in ("2 cores, 24 GiB", "| 15,002 | Transform | 4.0 | 3,750 |", "900 MB",
                 "| 0.50 |", "cached re-run 9.0 s", "| http 1 rows | 5.0 | 9.0 | 150.0 |"):
        assert text in table, text
