"""A URL's password is masked wherever the project shows the URL (docs/team.md)."""
from __future__ import annotations

import pytest

from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import ServerSettings, Settings, settings_args


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg2://team:s3cr@t:x@127.0.0.1:5432/airflow",
     "postgresql+psycopg2://team:***@127.0.0.1:5432/airflow"),
    ("http://team:pw@127.0.0.1:5000", "http://team:***@127.0.0.1:5000"),
    ("postgresql://db.example/mlflow?user=team&password=pw&sslmode=require",
     "postgresql://db.example/mlflow?user=team&password=***&sslmode=require"),
    ("postgresql://team@127.0.0.1/airflow", "postgresql://team@127.0.0.1/airflow"),  # ~/.pgpass
    ("http://127.0.0.1:5000/some@path", "http://127.0.0.1:5000/some@path"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("", ""),
])
def test_passwords_are_masked_and_nothing_else_changes(url, shown):
    assert mask_url(url) == shown


def test_server_urls_come_from_the_environment_never_from_task_flags():
    servers = ServerSettings.from_env({"AIRFLOW_DB_URL": " postgresql://u:pw@h/db ",
                                       "MLFLOW_BACKEND_STORE_URI": "postgresql://u:pw@h/m"})
    assert servers.airflow_db_url == "postgresql://u:pw@h/db"
    assert servers.mlflow_backend_store_uri == "postgresql://u:pw@h/m"
    assert ServerSettings.from_env({}) == ServerSettings()
    # Settings (every Airflow task's flags, every MLflow run's parameters) have no URL field.
    assert not any("url" in flag or "uri" in flag for flag in settings_args(
        Settings(dataset="penguins", epochs=3)))
