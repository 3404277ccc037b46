"""Writing to MLflow runs: the tags that tie them to TFX runs and executions, run statuses,
params / metrics / tags in batches, files, and a note on the run when part of it could not be
recorded. Shared by the pipeline's run, its stages' runs, the Tuner's trials and the data inputs.
Nothing here touches MLflow at import time."""
from __future__ import annotations

import logging
import re
import time
import traceback
from pathlib import Path

# Tags that tie MLflow runs to TFX (ML Metadata) runs and executions.
TAG_PIPELINE = "tfx.pipeline_name"
TAG_PIPELINE_RUN = "tfx.pipeline_run_id"
TAG_NODE = "tfx.node_id"
TAG_EXECUTION = "tfx.execution_id"
TAG_STATE = "tfx.state"
TAG_COMPONENT = "tfx.component"
TAG_CACHED_FROM = "tfx.cached_from_run"  # MLflow run of the execution whose outputs were reused
TAG_CACHED_FROM_EXECUTION = "tfx.cached_from_execution_id"
TAG_ERROR = "error"
TAG_TRACKING_ERROR = "tracking_error"  # what of the run could not be recorded (run ends FAILED)
TAG_PARENT = "mlflow.parentRunId"  # MLflow's name: nests child runs under the parent
ERROR_FILE = "error.txt"

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
_MAX_TAG = 5000
_BATCH = 500  # MLflow's log_batch takes at most 1000 metrics per call


# What MLflow refuses in a metric, param or tag key (its rule: letters, digits, `_ - . : /` and
# spaces); a dataset's column names (`Body Mass (g)`) end up in keys.
_UNSAFE_NAME = re.compile(r"[^\w.\- :/]")


def safe_name(name: str) -> str:
    """A key MLflow accepts: each character it refuses becomes `_`."""
    return _UNSAFE_NAME.sub("_", name)


def short(text: str) -> str:
    """A tag value MLflow accepts: long text cut, with a note that it was."""
    return text if len(text) <= _MAX_TAG else text[:_MAX_TAG - 20] + "\n... (truncated)"


class Reported(BaseException):
    """An error raised in another process, as that process described it (tracebacks do not
    pickle): live_tracking's worker records the pipeline's error with these. Its type's name
    and traceback text are the original's."""

    def __init__(self, type_name: str, message: str, text: str):
        super().__init__(message)
        self.type_name, self.text = type_name, text


class ReportedError(Reported, Exception):
    """A run that failed (its MLflow runs end FAILED)."""


class ReportedInterrupt(Reported, KeyboardInterrupt):
    """A run that was interrupted (its MLflow runs end KILLED)."""


def error_text(error: BaseException) -> str:
    if isinstance(error, Reported) and error.text:
        return error.text
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def error_summary(error: BaseException) -> str:
    message = str(error).strip()
    name = error.type_name if isinstance(error, Reported) else type(error).__name__
    return f"{name}: {message}" if message else name


def recording_failed(client, run_id: str, what: str, error: Exception) -> None:
    """Part of a run could not be recorded: the run's tag says what, the log keeps the trace."""
    logging.getLogger(__name__).error("MLflow: recording %s in run %s failed", what, run_id,
                                      exc_info=error)
    client.set_tag(run_id, TAG_TRACKING_ERROR, short(f"{what}: {type(error).__name__}: {error}"))


def log(client, run_id: str, params=None, metrics=None, series=None, tags=None) -> None:
    """Params, metrics (step 0), series (step = position from 1) and tags, in batches."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    entries = [Metric(safe_name(k), float(v), now, 0) for k, v in (metrics or {}).items()]
    for key, values in (series or {}).items():
        entries += [Metric(safe_name(key), float(v), now, step)
                    for step, v in enumerate(values, start=1)]
    # Keys that differ only in refused characters meet here: the last value is kept (MLflow
    # refuses a batch that gives one param two values).
    param_list = [Param(k, v) for k, v in
                  {safe_name(k): str(v) for k, v in (params or {}).items()}.items()]
    tag_list = [RunTag(k, v) for k, v in
                {safe_name(k): short(str(v)) for k, v in (tags or {}).items()}.items()]
    client.log_batch(run_id, params=param_list, tags=tag_list)
    for start in range(0, len(entries), _BATCH):
        client.log_batch(run_id, metrics=entries[start:start + _BATCH])


def log_files(client, run_id: str, files: list[tuple[Path, str]]) -> None:
    """(path, artifact folder) pairs: a folder's files, or one file; missing paths are skipped."""
    for path, folder in files:
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), folder or None)
        elif path.exists():
            client.log_artifact(run_id, str(path), folder or None)
