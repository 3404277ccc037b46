"""`make bench`'s quality section, in seconds: the baselines train and score on given frames
(categorical, numeric and missing values, binary and multiclass), and the table shows each
dataset's seeds, mean and spread, baselines, tuned run and the target's verdict."""
import numpy as np
import pandas as pd
import pytest
from conftest import DATA

from pipeline.bench import quality
from pipeline.config.dataset_spec import load_spec


@pytest.fixture(scope="module")
def penguins():
    spec = load_spec(DATA / "penguins" / "spec.yaml")
    frame = pd.read_csv(spec.csv_path)
    half = len(frame) // 2
    rows = np.random.default_rng(0).permutation(len(frame))
    return spec, frame.iloc[rows[:half]], frame.iloc[rows[half:]]


@pytest.mark.parametrize("baseline", [
    # Trains the plain Keras baseline to the end (~15 s): e2e, out of make test-fast.
    pytest.param(quality.plain_keras, marks=pytest.mark.e2e, id="plain_keras"),
    pytest.param(quality.hist_gradient_boosting, id="hist_gradient_boosting")])
def test_baselines_score_the_eval_frame(penguins, baseline):
    spec, train, test = penguins
    scores = baseline(train, test, spec, seed=1)
    assert set(scores) == {"accuracy", "fit_s"}  # multiclass: no AUC
    assert 1 / spec.num_classes < scores["accuracy"] <= 1.0  # better than chance: it learned


@pytest.mark.parametrize("baseline", [
    # The plain Keras baseline trained to the end, as above: e2e, out of make test-fast.
    pytest.param(quality.plain_keras, marks=pytest.mark.e2e, id="plain_keras"),
    pytest.param(quality.hist_gradient_boosting, id="hist_gradient_boosting")])
def test_binary_baselines_report_auc_and_numeric_only_tables_work(penguins, baseline):
    spec, train, test = penguins
    # A binary, numeric-only table (as the breast-cancer one): one class against the rest.
    numeric = [f.name for f in spec.model_features if f.is_numeric]
    binary = spec.__class__(**{**spec.__dict__, "classes": ("Adelie", "other"),
                               "features": tuple(f for f in spec.features
                                                 if f.name in numeric or f.name == spec.label)})
    relabel = {c: ("Adelie" if c == "Adelie" else "other") for c in spec.classes}
    train, test = (f.assign(**{spec.label: f[spec.label].map(relabel)}) for f in (train, test))
    scores = baseline(train, test, binary, seed=1)
    assert 0.5 < scores["auc"] <= 1.0 and 0.0 <= scores["accuracy"] <= 1.0


def test_table_rows_and_target_verdicts():
    def seeds(values):
        return {s: {"auc": v, "accuracy": 0.9, "wall_s": 40.0} for s, v in zip((1, 2, 3), values)}

    def entry(values):
        aucs = list(values)
        return {"seeds": seeds(aucs), "auc": quality._mean_spread(aucs),
                "accuracy": quality._mean_spread([0.9] * 3),
                "plain_keras": {s: {"auc": 0.95, "accuracy": 0.89} for s in (1, 2, 3)},
                "hist_gb": {"auc": 0.954, "accuracy": 0.90},
                "tuned": {"auc": 0.958, "accuracy": 0.91, "tuner_s": 99.6, "wall_s": 160.0}}

    met = quality.table({"taxi": entry([0.957, 0.958, 0.959])})
    assert "| taxi | **pipeline, mean of seeds** | 0.9580 | 0.9000 | auc 0.9570-0.9590, " \
           "accuracy 0.9000-0.9000; target auc >= 0.953: met |" in met
    assert "| taxi | pipeline --tune, seed 1 | 0.9580 | 0.9100 | Tuner 100 s, run 160 s |" in met
    assert "| taxi | HistGradientBoosting | 0.9540 | 0.9000 | same split, defaults |" in met
    missed = quality.table({"taxi": entry([0.948, 0.952, 0.953]),
                            "other": {"error": "RuntimeError: boom"}})
    assert "target auc >= 0.953: NOT met |" in missed
    assert "| other | - | - | - | failed: RuntimeError: boom |" in missed
