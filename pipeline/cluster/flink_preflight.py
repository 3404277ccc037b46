"""Before a Flink run starts TFX: the job server jar on disk, the cluster's REST API answering
with a TaskManager, and the worker pool listening. Without this, a missing piece shows minutes
later as a Beam stack trace (or, for the jar, as Beam trying to download it at run time)."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from pipeline.cluster import flink_install
from pipeline.config.settings import Settings


class ClusterUnavailable(Exception):
    """The Flink cluster, its worker pool or Beam's job server is not there; the message says
    which and how to get it (the CLI exits 2: nothing ran)."""


def _address(text: str) -> tuple[str, int]:
    parts = urlsplit("//" + text.split("://", 1)[-1])
    return parts.hostname or "", parts.port or 0


def check(settings: Settings) -> None:
    """Raise ClusterUnavailable unless a FlinkRunner run can start; other runners pass."""
    if settings.beam_runner != "FlinkRunner":
        return
    missing = flink_install.missing_job_server(settings.flink_job_server_jar)
    if missing:
        raise ClusterUnavailable(missing)
    host, port = _address(settings.beam_master)
    url = f"http://{host}:{port or 8081}/overview"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            taskmanagers = int(json.load(response).get("taskmanagers", 0))
    except (OSError, urllib.error.URLError, ValueError) as e:
        raise ClusterUnavailable(f"no Flink cluster answers at {url} ({e}): start one with "
                                 "`make flink`, or give --beam-master host:port") from None
    if taskmanagers < 1:
        raise ClusterUnavailable(f"the Flink cluster at {url} has no TaskManager")
    if settings.resolved_beam_environment() == "external":
        host, port = _address(settings.beam_worker_pool)
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as e:
            raise ClusterUnavailable(
                f"no Beam worker pool listens at {settings.beam_worker_pool} ({e}): `make "
                "flink` starts one, or give --beam-worker-pool host:port") from None
