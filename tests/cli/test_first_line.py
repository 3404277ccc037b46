"""The run's first lines come before the heavy imports (issue 26: the first line within 2 s of
the command): the header is written before TensorFlow, TFX, Great Expectations, Beam or MLflow
is imported, and a suite refused after it still leaves nothing created. ~3 s."""
from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO
from pipeline.cli import main

HEAVY = ("tensorflow", "tfx", "great_expectations", "apache_beam", "mlflow")

# Runs the CLI up to its header, then reports what was imported by then and stops the process.
_UP_TO_THE_HEADER = f"""
import os, sys
from pipeline.runners import local_dag
write_header = local_dag.write_header
def header(*args, **kwargs):
    write_header(*args, **kwargs)
    print("IMPORTED", *[m for m in {HEAVY!r} if m in sys.modules], flush=True)
    os._exit(0)
local_dag.write_header = header
from pipeline.cli.main import main
main(["run", "--dataset", "penguins", "--output-root", sys.argv[1]])
"""


def test_the_header_is_written_before_tensorflow_or_great_expectations_is_imported(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", _UP_TO_THE_HEADER, str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert lines[0].startswith("Pipeline csv2model-penguins: "), lines
    assert lines[1].startswith("  full log: ") and lines[2].startswith("  Beam: "), lines
    assert lines[-1] == "IMPORTED", lines  # none of HEAVY
    assert not out.exists()  # nothing created yet


def test_a_suite_refused_after_the_header_still_creates_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "penguins", data / "penguins")
    (data / "penguins" / "expectations.json").write_text("{not json")
    out = tmp_path / "out"
    code = main.main(["run", "--dataset", "penguins", "--data-root", str(data),
                      "--output-root", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.startswith("Pipeline csv2model-penguins: ")
    assert captured.err.startswith("error: expectation suite ") and "not valid JSON" in \
        captured.err
    assert not out.exists()
