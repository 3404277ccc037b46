"""The layers written in pyproject.toml's [tool.importlinter] hold, and a module in the wrong
layer fails `lint-imports` with the name of the contract it breaks."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    # lint-imports reads ./pyproject.toml and imports the packages from the working directory.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(root), "PATH": ""})


def _copy_tree(target: Path) -> Path:
    for package in ("pipeline", "components"):
        shutil.copytree(REPO / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_repository_keeps_its_layers():
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_component_importing_tracking_breaks_the_layers_contract(tmp_path):
    root = _copy_tree(tmp_path)
    (root / "components" / "leaky.py").write_text(
        "from pipeline.tracking import registry  # module code must not log to MLflow\n")
    done = _lint(root)
    assert done.returncode == 1
    assert "Layers: cli/bench > runners" in done.stdout and "BROKEN" in done.stdout
    assert "components.leaky -> pipeline.tracking.registry" in done.stdout


def test_the_airflow_dag_importing_the_pipeline_stack_is_refused(tmp_path):
    root = _copy_tree(tmp_path)
    dag = root / "pipeline" / "runners" / "airflow" / "dag.py"
    dag.write_text(dag.read_text() + "\nfrom pipeline.config import settings\n")
    done = _lint(root)
    assert done.returncode == 1
    assert "The Airflow DAG loads in the Airflow venv" in done.stdout
    assert "pipeline.runners.airflow.dag -> pipeline.config.settings" in done.stdout
