"""`task: regression` in a spec (docs/regression.md): no classes, a numeric label, its gates."""
from __future__ import annotations

import pytest
import yaml

from pipeline.config.dataset_spec import Gates, SpecError, load_spec
from pipeline.config.settings import Settings

SPEC = {
    "name": "prices", "csv": "data.csv", "task": "regression", "label": "price",
    "features": {"size": {"type": "float"}, "color": {"type": "categorical"},
                 "price": {"type": "float", "role": "label"}},
}


def _load(tmp_path, **changes):
    raw = {**SPEC, **changes}
    raw = {k: v for k, v in raw.items() if v is not None}
    (tmp_path / "data.csv").write_text("size,color,price\n1,red,2\n")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def test_a_regression_spec_has_no_classes_and_a_numeric_label(tmp_path):
    spec = _load(tmp_path)
    assert spec.is_regression and spec.classes == () and spec.num_classes == 0
    assert spec.from_config(spec.to_config()).is_regression
    assert _load(tmp_path, features={**SPEC["features"],
                                     "price": {"type": "int", "role": "label"}}).is_regression


@pytest.mark.parametrize("changes, message", [
    ({"classes": [0, 1]}, "task 'regression' predicts a number and takes no 'classes'"),
    ({"features": {**SPEC["features"], "price": {"type": "categorical", "role": "label"}}},
     "task 'regression' needs a numeric label: 'price' is categorical; make it float or int"),
    ({"task": "binary"}, "missing required key 'classes' (task 'binary' predicts one of them; "
                         "task 'regression' predicts a number)"),
    ({"gates": {"min_auc": 0.9}}, "gates: unknown key(s) ['min_auc'] for task 'regression'"),
    ({"gates": {"max_rmse": -1}}, "gates.max_rmse must be a number from 0 to inf"),
])
def test_what_a_regression_spec_cannot_hold_is_refused_by_name(tmp_path, changes, message):
    with pytest.raises(SpecError) as error:
        _load(tmp_path, **changes)
    assert message in str(error.value)


def test_regression_gates_come_from_the_command_line_then_the_spec_then_the_defaults(tmp_path):
    spec = _load(tmp_path, gates={"max_rmse": 12.5, "min_improvement_over_mean": 0.2})
    assert spec.gates == Gates(max_rmse=12.5, min_improvement_over_mean=0.2)
    settings = Settings()
    assert settings.gate(spec, "max_rmse").value == 12.5
    assert settings.replace(max_rmse=9.0).gate(spec, "max_rmse").source == "--max-rmse"
    defaults = {k: settings.gate(_load(tmp_path), k).value
                for k in ("max_rmse", "min_improvement_over_mean", "max_rmse_increase")}
    # With none set: no bound on the RMSE itself, but it must beat the training mean and the
    # champion.
    assert defaults == {"max_rmse": float("inf"), "min_improvement_over_mean": 0.0,
                        "max_rmse_increase": 0.0}


def test_the_shipped_regression_dataset_leaves_out_the_columns_that_give_the_fare_away():
    spec = Settings(dataset="taxi_fare").load_spec()
    assert spec.is_regression and spec.label == "fare"
    assert {"tips", "big_tipper"}.isdisjoint(f.name for f in spec.model_features)
    assert any(f.is_numeric for f in spec.model_features)
    assert any(f.type == "categorical" for f in spec.model_features)
    with spec.csv_path.open() as f:
        assert sum(1 for _ in f) - 1 >= 10_000


def test_text_in_the_label_stops_the_preflight_naming_the_column_and_the_value(tmp_path):
    from pipeline.inputs.csv_preflight import InputError, check_csv

    spec = Settings(dataset="taxi_fare").load_spec()
    lines = spec.csv_path.read_text().splitlines()[:6]
    fare = lines[0].split(",").index("fare")
    cells = lines[3].split(",")
    cells[fare] = "twelve dollars"
    lines[3] = ",".join(cells)
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        check_csv(spec.with_csv(path))
    assert ("column 'fare' (float in the spec) holds text that is not a number: "
            "'twelve dollars' on line 4") in str(error.value)
