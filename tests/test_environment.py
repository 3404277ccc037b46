"""Test runs do not inherit a developer's MLflow, Airflow, bench or TensorFlow settings."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, developer_env

DEVELOPER = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000",
             "MLFLOW_EXPERIMENT_NAME": "someone-elses", "AIRFLOW_HOME": "/nonexistent/airflow",
             "AIRFLOW__CORE__DAGS_FOLDER": "/nonexistent/dags", "BENCH_SIZES": "1,10,100",
             "TF_CPP_MIN_LOG_LEVEL": "0", "__pyfunc_model_path__": "/nonexistent/model"}


def test_no_developer_variable_reaches_a_test():
    assert developer_env() == []
    assert os.environ.get("TF_USE_LEGACY_KERAS") == "1"  # what the tests do set is kept


def test_a_developers_variables_are_kept_out_of_the_session(tmp_path):
    """The test above, in a pytest run started from a shell that has them all set."""
    env = {**os.environ, **DEVELOPER}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{__file__}::test_no_developer_variable_reaches_a_test"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
