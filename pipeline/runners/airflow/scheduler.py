"""Serve the pipeline as a scheduled Apache Airflow DAG: the pipeline-venv side of `make airflow`.

Airflow 2 lives in its own venv (.venv-airflow, from requirements/airflow-lock.txt): it pins
SQLAlchemy < 2 and Flask 2.x, while MLflow here runs on SQLAlchemy 2 and Flask 3. The Airflow venv
cannot import TFX, so the DAG (dag.py) is built from a JSON description that
this module writes from the compiled pipeline: a first task that checks whether anything changed
since the last successful run (when nothing did, every other task is skipped), one task per TFX
stage with its upstream stages and the command that runs it here (runners/single_node.py), a
last task that logs the run to MLflow, and the schedule from the settings.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import (
    REPO_ROOT,
    TRAINING_ONLY,
    ServerSettings,
    Settings,
    settings_args,
)
from pipeline.config.stage_names import EXPECTATIONS_GATE, STATISTICS_GEN
from pipeline.runners import single_node, warm_worker

DAG_FOLDER = Path(__file__).resolve().parent / "dags"
AIRFLOW_VENV = REPO_ROOT / ".venv-airflow"  # made by `make airflow-venv`
SPEC_FOLDER = "csv2model"  # under the Airflow home: one JSON file per DAG (per dataset)
TRACK_TASK = "track_mlflow"
CHECK_TASK = single_node.CHECK_TASK  # "check_inputs", the first task
RUN_ID_TEMPLATE = "{{ run_id }}"  # Airflow fills in the run id when the task starts
ADMIN = "admin"
PASSWORD_FILE = "admin_password.txt"


def airflow_home(settings: Settings) -> Path:
    """Airflow's home (SQLite metadata DB, task logs, DAG descriptions) beside the datasets."""
    return Path(settings.output_root) / "airflow"


def airflow_schedule(settings: Settings) -> str | None:
    """The cron expression, or None (Airflow's "manual runs only") for 'none'."""
    return None if settings.schedule.strip().lower() in ("", "none") else settings.schedule


# Edges the builder adds only so that a runner that runs one stage at a time stops sooner on a
# CSV the contract refuses (its gate before the statistics). Under the LocalExecutor the two run
# at once instead; a refused CSV still stops the run before the Trainer, which needs the gates.
SEQUENTIAL_ONLY_EDGES = {(STATISTICS_GEN, EXPECTATIONS_GATE)}  # (stage, upstream)


def parallel_stages(settings: Settings, servers: ServerSettings | None = None) -> bool:
    """Does Airflow run independent stages at once (the LocalExecutor, on PostgreSQL)?"""
    return bool((servers or ServerSettings.from_env()).airflow_db_url)


def dag_spec(settings: Settings) -> dict:
    """Everything the Airflow DAG needs, as plain data."""
    ir = single_node.compile_ir(settings, settings.load_spec())
    dropped = SEQUENTIAL_ONLY_EDGES if parallel_stages(settings) else set()
    command = [sys.executable, "-m", "pipeline"]
    flags = settings_args(settings)
    return {
        "dag_id": ir.pipeline_info.id,
        "description": f"csv2model on {settings.dataset}: {CHECK_TASK} skips the run when its "
                       f"inputs are those of the last successful run, else one task per TFX "
                       f"stage, then {TRACK_TASK} logs the run to MLflow",
        "dataset": settings.dataset,
        "schedule": airflow_schedule(settings),
        "start_date": settings.schedule_start,
        "catchup": settings.catchup,
        "retries": settings.retries,
        "retry_delay_s": settings.retry_delay_s,
        "cwd": str(REPO_ROOT),
        "no_retry_exit_codes": list(single_node.NO_RETRY_EXIT_CODES),
        # Runs before every stage; its skip exit code skips them all (and the tracking).
        "check": {"task_id": CHECK_TASK,
                  "command": command + ["check-inputs", "--run-id", RUN_ID_TEMPLATE] + flags,
                  "skip_exit_code": single_node.EXIT_UP_TO_DATE},
        "tasks": [
            {"task_id": node, "upstream": [u for u in upstream if (node, u) not in dropped],
             "command": command + ["run-node", "--node", node, "--run-id", RUN_ID_TEMPLATE]
                        + flags}
            for node, upstream in single_node.stages(ir)
        ],
        "track": {"task_id": TRACK_TASK,
                  "command": command + ["track-run", "--run-id", RUN_ID_TEMPLATE] + flags},
    }


SCORE_TASK = "score"


def scoring_dag_spec(settings: Settings, csv: Path, schedule: str) -> dict:
    """The scoring DAG (`make score` on a schedule): one task running `python -m pipeline
    score`. One task rather than one per stage: the scoring pipeline imports the champion's
    artifacts, and a DAG compiled now would keep scoring with today's champion after the next
    training run promotes another. The command holds the output folder's lock like every
    task of the training DAG, so the two never run on the folder at once."""
    command = [sys.executable, "-m", "pipeline", "score", "--csv", str(Path(csv).resolve())]
    return {
        "dag_id": f"{settings.full_pipeline_name}-score",
        "description": f"csv2model on {settings.dataset}: score {csv} with the champion model "
                       "into outputs/<dataset>/scores/<timestamp>/ (logged to MLflow itself)",
        "dataset": settings.dataset,
        "schedule": None if schedule.strip().lower() in ("", "none") else schedule,
        "start_date": settings.schedule_start,
        "catchup": False,  # the file at the path now, not once per missed interval
        "retries": settings.retries,
        "retry_delay_s": settings.retry_delay_s,
        "cwd": str(REPO_ROOT),
        # A refused file (2) or a stop by a gate (1: critical drift) does not change by retrying.
        "no_retry_exit_codes": [1, 2],
        "tasks": [{"task_id": SCORE_TASK, "upstream": [],
                   "command": command + settings_args(settings.replace(csv=None),
                                                      leave_out=TRAINING_ONLY)}],
    }


def write_dag_spec(settings: Settings, home: Path | None = None, spec: dict | None = None
                   ) -> Path:
    from pipeline.console.output_capture import captured_output

    if spec is None:
        with captured_output(settings.log_path):  # TensorFlow's import noise goes to the log
            spec = dag_spec(settings)
    path = Path(home or airflow_home(settings)) / SPEC_FOLDER / f"{spec['dag_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed: Airflow may parse the folder at any moment.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def airflow_env(settings: Settings, home: Path, venv: Path = AIRFLOW_VENV,
                servers: ServerSettings | None = None) -> dict[str, str]:
    """The environment every Airflow command of this project runs with. The database URL
    (AIRFLOW_DB_URL, password included) goes to Airflow only here, in the environment: never
    in a command line, which `ps` shows to every user of the machine."""
    servers = servers or ServerSettings.from_env()
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # With SQLite Airflow runs one task at a time, which suits one laptop: a Beam stage
        # already takes every core. On PostgreSQL the LocalExecutor runs the stages that do not
        # depend on each other (ingestion and the schema import, the contract and the
        # statistics) at the same time.
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if parallel_stages(settings, servers)
                                   else "SequentialExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(settings.airflow_port),
        "AIRFLOW__WEBSERVER__WORKERS": "2",
        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",  # silences a deprecation warning
        # The scheduler starts each task as `airflow tasks run ...`, found on PATH.
        "PATH": f"{Path(venv) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    if servers.airflow_db_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = servers.airflow_db_url
    # The scheduler's loop sleeps this long when it has nothing to do (Airflow's default 1 s):
    # a stage's task then starts ~0.5 s sooner after the one before it ends (measured on
    # penguins: 1.5 -> 1.0 s a task at 0.1 s), for ~5% of a core while idle (2.5% at 1 s,
    # 12% at 0.1 s). docs/team.md.
    env.setdefault("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.25")
    return env


def start_warm_worker(settings: Settings, env: dict, keep_while: int | None = None) -> None:
    """Start the warm worker the tasks run in (pipeline/runners/warm_worker.py) as Airflow
    starts, rather than at the run's first task: as a task's command does (`python -m pipeline
    warm-worker` in the tasks' folder and environment, so under the key the tasks compute),
    so that the first run's stages find its imports done. Returns once it listens, before
    its imports. keep_while: a process id the worker stays for (then its idle time counts)."""
    command = [sys.executable, "-m", "pipeline", "warm-worker", *settings_args(settings)]
    if keep_while is not None:
        command += ["--keep-while", str(keep_while)]
    subprocess.run(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=120)


def database_label(servers: ServerSettings | None = None) -> str:
    """Which metadata DB Airflow uses, for people: the URL's password masked."""
    servers = servers or ServerSettings.from_env()
    if servers.airflow_db_url:
        return f"{mask_url(servers.airflow_db_url)}, LocalExecutor"
    return "SQLite in the home, SequentialExecutor"


def _airflow(venv: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(Path(venv) / "bin" / "airflow"), *args], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args[:2])}` failed:\n{result.stderr[-3000:]}")
    return result


def _admin_password(venv: Path, env: dict, home: Path) -> str:
    """The admin login: made once, its password kept in Airflow's home for its owner only."""
    path = home / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    created = _airflow(venv, env, "users", "create", "--username", ADMIN, "--password", password,
                       "--role", "Admin", "--firstname", "Admin", "--lastname", "User",
                       "--email", "admin@localhost")
    if "already exist" in created.stdout:  # its password file was deleted: set a new one
        _airflow(venv, env, "users", "reset-password", "--username", ADMIN,
                 "--password", password)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _wait_for_port(port: int, processes: list, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(1)
    return False


def serve(settings: Settings, venv: Path = AIRFLOW_VENV, out=sys.stdout,
          score_csv: Path | None = None, score_schedule: str = "none") -> int:
    """Write the DAG description, set up Airflow's DB and login, then run Airflow's scheduler and
    webserver until Ctrl-C or until one of them stops; returns the exit status.

    Not `airflow standalone`: it also starts log servers that listen on every interface (the
    scheduler's and the triggerer's), which a single-machine setup does not need."""
    venv = Path(venv).resolve()
    if not (venv / "bin" / "airflow").exists():
        raise FileNotFoundError(f"Airflow is not installed in {venv}: run `make airflow-venv`")
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    spec_path = write_dag_spec(settings, home)
    spec = json.loads(spec_path.read_text())
    scoring_path = home / SPEC_FOLDER / f"{settings.full_pipeline_name}-score.json"
    if score_csv is not None:
        scoring_path = write_dag_spec(settings, home,
                                      scoring_dag_spec(settings, score_csv, score_schedule))
    elif scoring_path.exists():  # served without a file to score: no scoring DAG this time
        scoring_path.unlink()
    env = airflow_env(settings, home, venv)
    _airflow(venv, env, "db", "migrate")
    password = _admin_password(venv, env, home)
    url = f"http://127.0.0.1:{settings.airflow_port}"
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    schedule = spec["schedule"] or "none (trigger runs by hand)"
    out.write(
        f"Airflow for DAG {spec['dag_id']} ({CHECK_TASK} + {len(spec['tasks'])} stages + "
        f"{TRACK_TASK}), "
        f"schedule {schedule} (UTC), catch-up {'on' if spec['catchup'] else 'off'}\n"
        f"  UI:     {url}\n"
        f"  login:  {ADMIN} / {password}   (kept in {home / PASSWORD_FILE})\n"
        f"  DB:     {database_label()}\n"
        f"  home:   {home}  (task logs; scheduler.log and webserver.log in logs/)\n"
        f"  DAG:    {DAG_FOLDER}, described by {spec_path}\n")
    if score_csv is not None:
        out.write(f"  scoring DAG {settings.full_pipeline_name}-score: {score_csv}, schedule "
                  f"{score_schedule} (UTC), described by {scoring_path}\n")
    out.flush()
    airflow = str(venv / "bin" / "airflow")
    processes = []
    # `kill` stops Airflow as Ctrl-C does, until serve returns: then the caller's handler is back.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    # Kept while Airflow is served (stopped below, or idle 300 s after this process is gone),
    # so every run's stages find it warm; an install or a change of the worker's code stops it
    # (the next run's first task starts a fresh one).
    start_warm_worker(settings, env, keep_while=os.getpid())
    try:
        for name, args in (("scheduler", ["scheduler", "--skip-serve-logs"]),
                           ("webserver", ["webserver"])):
            with open(logs / f"{name}.log", "a") as log:  # the child keeps its own descriptor
                processes.append(subprocess.Popen([airflow, *args], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL))
        if _wait_for_port(settings.airflow_port, processes, seconds=180):
            out.write(f"Airflow is ready at {url}. Stop it with Ctrl-C.\n")
            out.flush()
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        out.write(f"Airflow stopped unexpectedly; see {logs}/scheduler.log and webserver.log\n")
        return 1
    except KeyboardInterrupt:
        out.write("Stopping Airflow...\n")
        return 0
    finally:
        warm_worker.stop(settings.output_root)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        signal.signal(signal.SIGTERM, previous_handler)
