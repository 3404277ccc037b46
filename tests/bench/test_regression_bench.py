"""The bench's regression section (pipeline/bench/regression.py) without pipeline runs: its
baselines, its verdicts and its table; the figures themselves come from `make bench`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.bench import regression
from pipeline.config.dataset_spec import load_spec


def _split(tmp_path):
    folder = regression.write_penguin_mass(tmp_path)
    spec = load_spec(folder / "spec.yaml")
    frame = pd.read_csv(spec.csv_path)
    frame["year"] = frame["year"].astype(str)
    return spec, frame.iloc[:250], frame.iloc[250:]


def test_the_second_table_is_penguin_body_mass_with_a_regression_spec(tmp_path):
    spec, train, test = _split(tmp_path)
    assert spec.is_regression and spec.label == "body_mass_g"
    assert {f.type for f in spec.model_features} >= {"float", "categorical"}


def test_hist_gradient_boosting_scores_rmse_on_the_given_split(tmp_path):
    spec, train, test = _split(tmp_path)
    hgb = regression.hist_gradient_boosting(train, test, spec, seed=1)
    # It learns something: well below the label's spread.
    assert 0 < hgb["rmse"] < test["body_mass_g"].std()
    assert regression.rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(np.sqrt(2.0))


@pytest.mark.e2e  # the first tf_keras fit in a process: ~14 s of AutoGraph converting Keras
def test_plain_keras_scores_rmse_on_the_given_split(tmp_path):
    """The seed-style script `make bench` compares with, trained to the end as a user's plain
    script does (without the Trainer's AutoGraph lever, tests/bench/test_quality.py)."""
    spec, train, test = _split(tmp_path)
    plain = regression.plain_keras(train, test, spec, seed=1)
    assert plain["rmse"] > 0 and np.isfinite(plain["rmse"])


def test_verdicts_and_table():
    entry = {"pipeline": {"rmse": 3.2, "mae": 1.5, "r_squared": 0.9},
             "hist_gb": {"rmse": 3.15}, "plain_keras": {"rmse": 4.0}}
    entry["targets"] = regression.verdicts(entry)
    assert entry["targets"]["rmse_vs_hgb_met"] and entry["targets"]["beats_plain_keras"]
    worse = dict(entry, pipeline={"rmse": 3.3})
    assert not regression.verdicts(worse)["rmse_vs_hgb_met"]
    text = regression.table({"taxi_fare": entry, "first_run": {
        "regression_s": [100.0, 98.0], "classification_s": [95.0, 97.0], "ratio": 98 / 95,
        "met": True}})
    assert "| taxi_fare | 3.2 | 1.5 | 0.900 | 3.15 | 4 | 1.016 met | yes |" in text
    assert "ratio 1.03 (<= 1.1: met)" in text
