"""GX's verdict on a suite, remembered (components/contract/suite_verdicts.py): a suite GX
accepted is checked again without importing GX, with the same result; anything that could change
the verdict asks GX again, and a refused suite is refused every time."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.contract import suite_loading, suite_verdicts
from components.contract.suite_loading import SuiteError
from conftest import REPO
from pipeline.config.dataset_spec import DatasetSpec, Feature

SPEC = DatasetSpec(
    name="toy", csv_path=Path("toy.csv"), task="binary", label="y", classes=("0", "1"),
    features=(Feature("fare", "float"), Feature("color", "categorical"),
              Feature("y", "int", role="label")),
)


def _entry(type_: str, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"severity": "critical"}}


SUITE = {"name": "toy", "expectations": [
    _entry("expect_table_row_count_to_be_between", min_value=1),
    _entry("expect_column_values_to_be_between", column="fare", min_value=0, max_value=100),
    _entry("expect_column_values_to_be_in_set", column="color", value_set=["red", "blue"]),
    _entry("expect_column_distinct_values_to_contain_set", column="y", value_set=[0, 1]),
    _entry("expect_column_mean_to_be_between", column="fare", min_value=0),
]}

# Checks a suite (argv[2]) against a spec (argv[3]) in a fresh process, with the verdicts in
# argv[1]; prints whether GX was imported and the checks' kinds.
_CHECK_IN_A_NEW_PROCESS = """
import json, sys
from pathlib import Path
from pipeline.cli import unused_imports
unused_imports.keep_out()
from components.contract import suite_loading, suite_verdicts
from pipeline.config.dataset_spec import DatasetSpec
suite_verdicts.CACHE_DIR = Path(sys.argv[1])
spec = DatasetSpec.from_config(json.loads(sys.argv[3]))
suite = suite_loading.parse_suite(json.loads(sys.argv[2]), spec, "toy.json")
print(json.dumps({"gx": "great_expectations" in sys.modules,
                  "kinds": [c.kind for c in suite.checks]}))
"""


@pytest.fixture
def verdicts(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "verdicts"
    monkeypatch.setattr(suite_verdicts, "CACHE_DIR", folder)
    return folder


def _check_in_a_new_process(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHECK_IN_A_NEW_PROCESS, str(folder),
                           json.dumps(SUITE), json.dumps(SPEC.to_config())],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_accepted_suite_is_checked_again_without_gx(verdicts):
    first = _check_in_a_new_process(verdicts)  # nothing remembered: GX gives the verdict
    assert first["gx"] is True
    assert len(list(verdicts.glob("*.json"))) == 1

    again = _check_in_a_new_process(verdicts)
    assert again == {"gx": False, "kinds": first["kinds"]}
    assert again["kinds"] == [suite_loading.ROW_COUNT, suite_loading.MAP, suite_loading.MAP,
                              suite_loading.DISTINCT, suite_loading.MOMENTS]
    # In this process too: the remembered verdict gives the Suite GX's own check gives.
    remembered = suite_loading.parse_suite(SUITE, SPEC, "toy.json")
    assert suite_verdicts.kinds(SUITE) is not None  # it was the remembered verdict
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suite_verdicts, "CACHE_DIR", verdicts.parent / "nothing-remembered")
        assert suite_verdicts.kinds(SUITE) is None
        from_gx = suite_loading.parse_suite(SUITE, SPEC, "toy.json")
    assert remembered == from_gx


def test_an_edit_another_gx_or_other_checking_code_asks_gx_again(verdicts, monkeypatch,
                                                                   tmp_path):
    suite_loading.parse_suite(SUITE, SPEC, "toy.json")
    assert suite_verdicts.kinds(SUITE) is not None

    edited = json.loads(json.dumps(SUITE))
    edited["expectations"][1]["kwargs"]["max_value"] = 99
    assert suite_verdicts.kinds(edited) is None

    code = tmp_path / "suite_loading.py"
    code.write_text("# another version of the checks\n")
    with monkeypatch.context() as patch:
        patch.setattr(suite_verdicts, "_CHECKING_CODE", code)
        assert suite_verdicts.kinds(SUITE) is None

    real_version = suite_verdicts.metadata.version
    # A fresh per-process memo of the version, dropped after the test.
    monkeypatch.setattr(suite_verdicts, "_checker",
                        functools.lru_cache()(suite_verdicts._checker.__wrapped__))
    monkeypatch.setattr(suite_verdicts.metadata, "version",
                        lambda name: "0.0.1" if name == "great_expectations" else
                        real_version(name))
    assert suite_verdicts.kinds(SUITE) is None


def test_a_refused_suite_is_refused_by_gx_every_time(verdicts):
    rejected = {"expectations": [
        _entry("expect_column_values_to_be_between", column="fare", min_value="low")]}
    for _ in range(2):
        with pytest.raises(SuiteError, match="Great Expectations rejects it"):
            suite_loading.parse_suite(rejected, SPEC, "toy.json")
    assert not verdicts.exists() or not list(verdicts.glob("*.json"))


def test_the_spec_is_checked_even_when_gx_accepted_the_suite(verdicts):
    suite_loading.parse_suite(SUITE, SPEC, "toy.json")
    narrower = DatasetSpec(name="toy", csv_path=Path("toy.csv"), task="binary", label="y",
                           classes=("0", "1"), features=(Feature("fare", "float"),
                                                         Feature("y", "int", role="label")))
    with pytest.raises(SuiteError, match="column 'color' is not in the spec"):
        suite_loading.parse_suite(SUITE, narrower, "toy.json")


@pytest.mark.parametrize("damage", ["{not json", '{"kinds": ["map"]}', "[]"])
def test_a_damaged_verdict_is_ignored(verdicts, damage):
    suite_loading.parse_suite(SUITE, SPEC, "toy.json")
    (remembered,) = verdicts.glob("*.json")
    remembered.write_text(damage)
    assert suite_verdicts.kinds(SUITE) is None
    suite = suite_loading.parse_suite(SUITE, SPEC, "toy.json")  # GX again, and remembered
    assert [c.kind for c in suite.checks][0] == suite_loading.ROW_COUNT
    assert suite_verdicts.kinds(SUITE) == [c.kind for c in suite.checks]
