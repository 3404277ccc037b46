"""The bench's Flink section without running anything: its table, with the Flink row's reason
when it was not run."""
from __future__ import annotations

from pipeline.bench.flink import markdown


def test_the_table_gives_ratios_to_the_direct_runner_and_says_why_flink_did_not_run():
    table = markdown({"rows": 15_002, "epochs": 3,
                      "direct": {"wall_s": 100.0, "peak_rss_mb": 1500.0, "stages": {}},
                      "worker_pool": {"wall_s": 150.0, "peak_rss_mb": 2500.0, "stages": {}},
                      "flink": {"skipped": "Beam's Flink job server is not installed"}})
    lines = table.splitlines()
    assert lines[0].startswith("## Beam on a local Flink cluster (15,002 taxi rows")
    assert "| 100.0 | 1.00 | 1,500 |" in lines[4]
    assert "| 150.0 | 1.50 | 2,500 |" in lines[5]
    assert "not run: Beam's Flink job server is not installed" in lines[6]
