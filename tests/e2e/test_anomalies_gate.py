"""The TFDV half of the data gates: data that keeps the data contract (the GX suite) but breaks
the reviewed schema is stopped by AnomaliesGate, before the Transform, with TFDV's words.

One partial run (`--until AnomaliesGate`, the data stages only) on the penguins with a schema
that no longer lists the island Dream; the suite still does, so the contract passes."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import DATA, pipeline_command
from pipeline.config.stage_names import ANOMALIES_GATE, EXPECTATIONS_GATE, TRANSFORM

pytestmark = pytest.mark.e2e


def test_anomalies_gate_stops_the_run_and_says_what_tfdv_found(tmp_path):
    data_root = tmp_path / "data"
    shutil.copytree(DATA / "penguins", data_root / "penguins")
    schema = data_root / "penguins" / "schema" / "schema.pbtxt"
    text = schema.read_text()
    assert text.count('  value: "Dream"\n') == 1
    schema.write_text(text.replace('  value: "Dream"\n', ""))

    done = subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--data-root", str(data_root),
                         "--output-root", str(tmp_path / "out"), "--until", ANOMALIES_GATE),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]  # a failed run
    error = done.stderr.splitlines()
    # The one error line is the gate's: how many anomalies, then each with its split and column.
    csv_path = data_root / "penguins" / "data.csv"  # the spec's file, named
    assert error[0].startswith(f"error: {csv_path}: TFDV found 2 anomalies against the "
                               "schema:"), error
    assert any(line.strip().startswith("[train] island:") and "Dream" in line
               for line in error), error
    assert any(line.strip().startswith("[eval] island:") for line in error), error
    summary = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()
               if line.split() and line.split()[0] in (EXPECTATIONS_GATE, ANOMALIES_GATE,
                                                      TRANSFORM)}
    assert summary == {EXPECTATIONS_GATE: "ran", ANOMALIES_GATE: "FAILED"}, done.stdout
