"""Airflow DAG file: the csv2model pipeline, one DAG per dataset described under
$AIRFLOW_HOME/csv2model/ (`make airflow` writes the description; see ../dag.py)."""
from airflow.configuration import AIRFLOW_HOME

from pipeline.runners.airflow.dag import build_dags

# Airflow collects the DAG objects it finds at module level.
globals().update(build_dags(AIRFLOW_HOME))
