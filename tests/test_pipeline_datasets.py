"""The pipeline on the other shipped dataset, whole, with the default settings but epochs.

Taxi runs end to end on a sample in test_pipeline_e2e.py; `make pipeline` runs it whole."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import pipeline_command

pytestmark = pytest.mark.e2e


def test_penguins_is_trained_blessed_and_pushed(tmp_path):
    result = subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--output-root", str(tmp_path),
                         "--epochs", "15"),
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "344 rows" in result.stdout
    accuracy = float(re.search(r"Evaluator .* accuracy ([0-9.]+), blessed yes", result.stdout)[1])
    assert accuracy >= 0.9  # the default multiclass gate; penguins separate well
    pushed = [p for p in (tmp_path / "penguins" / "serving").iterdir() if p.is_dir()]
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()
