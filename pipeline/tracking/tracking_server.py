"""`make mlflow-server`: an MLflow tracking server a team shares, its backend store on
PostgreSQL, its artifacts in a folder the server serves itself (docs/team.md).

Clients send runs, models and the registry to it with MLFLOW_TRACKING_URI=http://host:port;
they log artifacts through the server (`mlflow-artifacts:/` URIs, MLflow's artifact proxy),
so they need no access to its folder. The backend store's URL, password and all, reaches
`mlflow server` through its environment (MLFLOW_BACKEND_STORE_URI, which MLflow's own CLI
reads), never its command line: `ps` shows command lines to every user of the machine.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import (
    MLFLOW_ARTIFACTS_ENV,
    MLFLOW_BACKEND_STORE_ENV,
    ServerSettings,
    Settings,
)

HOST = "127.0.0.1"  # this machine only, unless --host says otherwise
EXAMPLE_URL = "postgresql+psycopg2://user:pass@127.0.0.1:5432/mlflow"
# The server's processes: one uvicorn worker per core, at most 4 (MLflow's default).
MAX_WORKERS = 4


class ServerConfigError(ValueError):
    """The backend store is missing or not PostgreSQL."""


def artifacts_destination(settings: Settings, servers: ServerSettings) -> Path:
    return Path(servers.mlflow_artifacts_destination or
                Path(settings.output_root) / "mlflow-server" / "artifacts").resolve()


def check_backend(servers: ServerSettings) -> str:
    url = servers.mlflow_backend_store_uri
    if not url:
        raise ServerConfigError(
            f"make mlflow-server needs a PostgreSQL database for its backend store: "
            f"{MLFLOW_BACKEND_STORE_ENV}={EXAMPLE_URL} make mlflow-server (docs/team.md)")
    if not url.startswith("postgresql"):
        raise ServerConfigError(f"{MLFLOW_BACKEND_STORE_ENV} is {mask_url(url)}: make "
                                f"mlflow-server runs on PostgreSQL (postgresql://...)")
    return url


def server_command(settings: Settings, servers: ServerSettings, host: str = HOST) -> list[str]:
    """`mlflow server` without the backend store's URL (it goes in server_env)."""
    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
    return [sys.executable, "-m", "mlflow", "server",
            "--artifacts-destination", artifacts_destination(settings, servers).as_uri(),
            "--serve-artifacts", "--host", host, "--port", str(settings.mlflow_ui_port),
            "--workers", str(workers)]


def server_env(servers: ServerSettings) -> dict[str, str]:
    env = dict(os.environ)
    env[MLFLOW_BACKEND_STORE_ENV] = check_backend(servers)
    env.pop(MLFLOW_ARTIFACTS_ENV, None)  # in the command line already, as a folder URI
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def server_url(settings: Settings, host: str = HOST) -> str:
    return f"http://{host}:{settings.mlflow_ui_port}"


def serve(settings: Settings, host: str = HOST, out: TextIO = sys.stdout) -> int:
    servers = ServerSettings.from_env()
    try:
        env = server_env(servers)
    except ServerConfigError as e:
        out.write(f"{e}\n")
        return 2
    folder = artifacts_destination(settings, servers)
    folder.mkdir(parents=True, exist_ok=True)
    url = server_url(settings, host)
    out.write(f"MLflow tracking server: {url}  (Ctrl-C stops it)\n"
              f"  backend store: {mask_url(servers.mlflow_backend_store_uri)}\n"
              f"  artifacts:     {folder} (served by the server: mlflow-artifacts:/)\n"
              f"  use it:        export MLFLOW_TRACKING_URI={url}; then make pipeline, make "
              "serve, make mlflow-ui follow it\n")
    out.flush()
    command = server_command(settings, servers, host)
    os.execve(command[0], command, env)  # Ctrl-C then goes straight to the server
    return 0
