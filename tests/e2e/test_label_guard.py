"""A label that collapsed to one class stops the real pipeline at the data contract, before
the Trainer, with one line naming the label and the shares it saw; nothing is trained or kept."""
from __future__ import annotations

import csv
import subprocess

import pytest

import mlflow_runs
from conftest import DATA, pipeline_command
from pipeline.config.settings import Settings

pytestmark = pytest.mark.e2e
ROWS = 500


def test_collapsed_label_stops_at_the_contract_before_the_trainer(tmp_path):
    sample = tmp_path / "input" / "data.csv"
    sample.parent.mkdir()
    with (DATA / "taxi" / "data.csv").open() as src, sample.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, reader.fieldnames)
        writer.writeheader()
        for i, row in zip(range(ROWS), reader):
            writer.writerow({**row, "big_tipper": "0"})  # nobody tips big any more
    settings = Settings(dataset="taxi", output_root=tmp_path / "outputs")
    done = subprocess.run(
        pipeline_command("run", "--dataset", "taxi", "--csv", str(sample),
                         "--output-root", str(settings.output_root)),
        capture_output=True, text=True, timeout=600, env=mlflow_runs.clean_env())
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    error = next(line for line in done.stderr.splitlines() + done.stdout.splitlines()
                 if line.startswith("error: "))
    assert error.startswith(f"error: {sample}: data contract broken: label 'big_tipper' has "
                            "class shares "
                            "outside the suite's bounds: train 0 100.0%, 1 0.0%; eval 0 100.0%, "
                            "1 0.0%")
    stages = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
              if line.startswith("  ") and len(line.split()) > 1}
    assert stages["ExpectationsGate"] == "FAILED"
    # The Transform may have run beside the checks (pipeline/runners/check_branch.py).
    assert "Trainer" not in stages and "Evaluator" not in stages
    assert not settings.serving_dir.exists() or not any(settings.serving_dir.iterdir())
