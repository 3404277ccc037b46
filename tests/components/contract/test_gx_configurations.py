"""components/contract/gx_configurations.py: within the block a GX validation gives the same
results, building each expectation's configuration once instead of at every look."""
from __future__ import annotations

import uuid

import pandas as pd
import pytest
from great_expectations.expectations.expectation import Expectation

from components.contract import suite_validation
from components.contract.gx_configurations import configurations_built_once

FRAME = pd.DataFrame({"fare": [1.0, 2.5, None, 40.0], "company": ["a", "b", "a", "zz"]})
EXPECTATIONS = [
    {"type": "expect_column_values_to_be_between", "kwargs": {
        "column": "fare", "min_value": 0, "max_value": 30, "mostly": 0.5}},
    {"type": "expect_column_values_to_be_between", "kwargs": {
        "column": "fare", "min_value": 0, "max_value": 30}},  # fails: 40
    {"type": "expect_column_values_to_be_in_set", "kwargs": {
        "column": "company", "value_set": ["a", "b"]}},  # fails: zz
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "fare", "mostly": 0.7}},
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 2, "max_value": 9}},
]


def _validate():
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="toy", expectations=[
        {**e, "id": str(uuid.UUID(int=i + 1))} for i, e in enumerate(EXPECTATIONS)])
    batch = suite_validation._ephemeral_batch_definition().get_batch(
        batch_parameters={"dataframe": FRAME})
    validation = batch.validate(suite, result_format={"result_format": "BASIC",
                                                      "partial_unexpected_count": 5})
    return sorted((r.expectation_config.id, r.expectation_config.type,
                   r.expectation_config.kwargs, r.success, r.result)
                  for r in validation.results)  # in the suite's order (the ids count up)


@pytest.fixture
def builds(monkeypatch) -> list:
    """Each build of an expectation's configuration, counted."""
    built = []
    rebuild = Expectation.__dict__["configuration"]

    def counted(self):
        built.append(id(self))
        return rebuild.fget(self)

    monkeypatch.setattr(Expectation, "configuration", property(counted))
    return built


def test_the_same_results_with_each_configuration_built_once(builds):
    expected = _validate()
    assert [success for *_, success, _ in expected] == [True, False, False, True, True]
    without = len(builds)
    builds.clear()
    with configurations_built_once():
        assert repr(_validate()) == repr(expected)  # repr: the null check lists a NaN
    assert len(set(builds)) == len(builds)  # one build per expectation object
    assert len(builds) * 4 < without  # GX alone rebuilt each one at every look
    assert isinstance(Expectation.__dict__["configuration"], property)


def test_the_block_puts_gx_property_back():
    rebuild = Expectation.__dict__["configuration"]
    with configurations_built_once():
        assert Expectation.__dict__["configuration"] is not rebuild
    assert Expectation.__dict__["configuration"] is rebuild
