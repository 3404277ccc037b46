"""make bench's init section: the printout it parses and the table it writes (no runs)."""
from __future__ import annotations

from pipeline.bench import init_tables


def test_the_gate_line_init_prints_is_parsed():
    line = ("  gates: min_auc 0.89, max_metric_drop 0.001 (the majority class AUC 0.500, a "
            "logistic regression 0.999, on the pipeline's eval split)")
    assert init_tables._GATES.search(line).groups() == ("min_auc", "0.89", "0.001", "0.500",
                                                        "0.999")


def test_table_marks_the_target_per_table_and_the_scaled_init():
    results = {
        "good": {"metric": "auc", "auc": 0.99, "hist_gb": {"auc": 1.0}, "ratio": 0.99,
                 "split": {"train": 70, "eval": 30}, "init_s": 5.0, "run_s": 60.0,
                 "pushed": True, "gate": {"key": "min_auc", "minimum": 0.8, "max_drop": 0.01,
                                          "majority": 0.5, "linear": 0.9}},
        "bad": {"metric": "accuracy", "accuracy": 0.5, "hist_gb": {"accuracy": 0.9},
                "ratio": 0.5 / 0.9, "split": {"train": 7, "eval": 3}, "init_s": 5.0,
                "run_s": 60.0, "pushed": False},
        "broken": {"init_s": 1.0, "error": "error: the label 'x' is not a column"},
        init_tables.SCALED_KEY: {"rows": 1_500_000, "init_s": 61.0, "returncode": 0,
                                 "peak_rss_mb": 900.0},
    }
    text = init_tables.table(results)
    assert "| good | 70 / 30 |" in text and "0.990 met" in text and "| yes |" in text
    assert "0.556 NOT met" in text and "min_auc 0.80 (0.500, 0.900)" in text
    assert "failed: error: the label 'x' is not a column" in text
    assert "1,500,000 rows: 61.0 s" in text and "(target <= 60 s: NOT met)" in text
