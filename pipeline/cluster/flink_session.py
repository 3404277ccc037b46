"""A local Flink session cluster: a JobManager and TaskManagers as separate JVMs started from
Flink's own distribution (scripts/install-flink), plus Beam's worker pool (worker_pool.py), all
on 127.0.0.1. `make flink` runs main(); the Flink test uses local_flink().

Flink's bin/*.sh scripts are not in the distribution PyPI ships (apache-flink-libraries), so the
JVMs are started as those scripts start them: the memory flags come from Flink's BashJavaUtils
(bin/bash-java-utils.jar) for the configuration written here, the entry points are
StandaloneSessionClusterEntrypoint and TaskManagerRunner, and Java 17 gets the --add-opens of
Flink 1.18's default flink-conf.yaml.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.cluster import flink_install, processes
from pipeline.config.settings import FLINK_REST_PORT, REPO_ROOT, WORKER_POOL_PORT

HOST = "127.0.0.1"
JOBMANAGER_CLASS = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASKMANAGER_CLASS = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
BASH_JAVA_UTILS = "org.apache.flink.runtime.util.bash.BashJavaUtils"
# Flink 1.18's env.java.opts.all: what its runtime (Kryo, Netty, Akka) reflects on under Java 17.
JAVA17_OPTS = [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    *(f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
        "java.lang", "java.net", "java.io", "java.nio", "sun.nio.ch", "java.lang.reflect",
        "java.text", "java.time", "java.util", "java.util.concurrent",
        "java.util.concurrent.atomic", "java.util.concurrent.locks")),
]
LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class FlinkCluster:
    rest_port: int
    worker_pool_port: int
    workdir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.rest_port}"

    @property
    def master(self) -> str:
        """What --beam-master takes."""
        return f"{HOST}:{self.rest_port}"

    @property
    def worker_pool(self) -> str:
        """What --beam-worker-pool takes."""
        return f"{HOST}:{self.worker_pool_port}"

    def rest(self, path: str, timeout: float = 5.0):
        """GET one of Flink's REST resources (/overview, /jobs/overview, ...) as JSON."""
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.load(response)

    def jobs(self) -> list[dict]:
        """Every job the cluster ran or runs: name, state, start and end times."""
        return self.rest("/jobs/overview")["jobs"]

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()]


def write_config(conf_dir: Path, rest_port: int, rpc_port: int, workdir: Path,
                 slots: int = 2, taskmanager_memory: str = "2048m") -> None:
    """flink-conf.yaml and log4j.properties: everything on 127.0.0.1, temp files under workdir."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    settings = {
        "jobmanager.rpc.address": HOST, "jobmanager.bind-host": HOST,
        "jobmanager.rpc.port": rpc_port, "taskmanager.host": HOST,
        "taskmanager.bind-host": HOST, "rest.address": HOST, "rest.bind-address": HOST,
        "rest.port": rest_port, "jobmanager.memory.process.size": "1024m",
        "taskmanager.memory.process.size": taskmanager_memory,
        "taskmanager.numberOfTaskSlots": slots, "parallelism.default": slots,
        "io.tmp.dirs": str(tmp), "web.tmpdir": str(tmp / "web"),
        "blob.storage.directory": str(tmp / "blobs"),
    }
    (conf_dir / "flink-conf.yaml").write_text(
        "".join(f"{key}: {value}\n" for key, value in settings.items()))
    (conf_dir / "log4j.properties").write_text(LOG4J)


def _resource_params(home: Path, conf_dir: Path, command: str) -> tuple[list[str], list[str]]:
    """(JVM memory flags, -D dynamic properties) BashJavaUtils derives from the configuration,
    as Flink's jobmanager.sh and taskmanager.sh get them."""
    out = subprocess.run(
        ["java", "-cp", f"{home / 'bin' / 'bash-java-utils.jar'}:{flink_install.classpath(home)}",
         BASH_JAVA_UTILS, command, "--configDir", str(conf_dir)],
        capture_output=True, text=True, check=True).stdout
    results = [line.split(":", 1)[1] for line in out.splitlines()
               if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
    if len(results) < 2:
        raise RuntimeError(f"BashJavaUtils {command} gave no JVM parameters:\n{out[-2000:]}")
    return results[0].split(), results[1].split()


def _jvm_command(home: Path, conf_dir: Path, log_file: Path, entry: str,
                 resources: str) -> list[str]:
    jvm, dynamic = _resource_params(home, conf_dir, resources)
    return ["java", *jvm, *JAVA17_OPTS, f"-Dlog.file={log_file}",
            f"-Dlog4j.configurationFile=file:{conf_dir / 'log4j.properties'}",
            "-cp", flink_install.classpath(home), entry, "--configDir", str(conf_dir), *dynamic]


def _wait_until_up(cluster: FlinkCluster, taskmanagers: int, slots: int,
                   timeout: float) -> None:
    """Until the REST API counts the TaskManagers and every one's slots (a TaskManager is
    counted before its slots are: a job then would wait for them) and the worker pool accepts
    connections; raises naming the process that died, with its log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}:\n"
                                   + _tail(cluster.workdir / "logs" / f"{name}.log"))
        registered, offered = _registered(cluster)
        if registered >= taskmanagers and offered >= taskmanagers * slots \
                and _accepts(cluster.worker_pool_port):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Flink cluster was not up after {timeout:.0f}s "
                               f"(logs: {cluster.workdir / 'logs'})")
        time.sleep(0.5)


def _registered(cluster: FlinkCluster) -> tuple[int, int]:
    """(TaskManagers, slots) the JobManager counts; (0, 0) while it does not answer."""
    try:
        overview = cluster.rest("/overview", timeout=2)
        return int(overview["taskmanagers"]), int(overview["slots-total"])
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return 0, 0


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def start_worker_pool(port: int, log_path: Path) -> subprocess.Popen:
    """Beam's worker pool (worker_pool.py) on 127.0.0.1:port, its SDK workers in its group."""
    from pipeline.cluster import worker_pool

    return processes.start([sys.executable, "-m", "pipeline.cluster.worker_pool",
                            f"--service_port={port}"], log_path,
                           env=worker_pool.worker_environment(), cwd=REPO_ROOT)


@contextlib.contextmanager
def local_worker_pool(log_path: Path, port: int = 0, timeout: float = 60.0) -> Iterator[str]:
    """The worker pool alone, without Flink (Beam's portable runner with its embedded job
    service uses it the way a Flink job does); yields its host:port, stops it at the end."""
    port = port or free_port()
    pool = start_worker_pool(port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not _accepts(port):
            if pool.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker pool did not start:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield f"{HOST}:{port}"
    finally:
        processes.stop(pool)


@contextlib.contextmanager
def local_flink(rest_port: int = 0, worker_pool_port: int = 0, taskmanagers: int = 1,
                slots: int = 2, taskmanager_memory: str = "2048m", workdir: Path | None = None,
                home: Path = flink_install.FLINK_HOME, timeout: float = 90.0,
                ) -> Iterator[FlinkCluster]:
    """A JobManager, `taskmanagers` TaskManagers and a worker pool, up when the block starts,
    stopped (every process group, the JVMs and the SDK workers) when it ends, however it ends.
    Port 0: a free one. workdir: logs and Flink's temp files (a temp folder, removed at the
    end, when None)."""
    missing = flink_install.missing_flink(home)
    if missing:
        raise FileNotFoundError(missing)
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="csv2model-flink-")) if own_dir else Path(workdir)
    cluster = FlinkCluster(rest_port or free_port(), worker_pool_port or free_port(), workdir)
    logs, conf_dir = workdir / "logs", workdir / "conf"
    try:
        write_config(conf_dir, cluster.rest_port, free_port(), workdir, slots, taskmanager_memory)
        cluster.processes["jobmanager"] = processes.start(
            _jvm_command(home, conf_dir, logs / "jobmanager.log", JOBMANAGER_CLASS,
                         "GET_JM_RESOURCE_PARAMS"), logs / "jobmanager.out")
        for i in range(taskmanagers):
            cluster.processes[f"taskmanager-{i}"] = processes.start(
                _jvm_command(home, conf_dir, logs / f"taskmanager-{i}.log", TASKMANAGER_CLASS,
                             "GET_TM_RESOURCE_PARAMS"), logs / f"taskmanager-{i}.out")
        cluster.processes["worker-pool"] = start_worker_pool(cluster.worker_pool_port,
                                                             logs / "worker-pool.log")
        _wait_until_up(cluster, taskmanagers, slots, timeout)
        yield cluster
    finally:
        # The worker pool first (its SDK workers talk to the TaskManagers), the JobManager last.
        for name in reversed(list(cluster.processes)):
            processes.stop(cluster.processes[name])
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            shutil.rmtree(workdir / "tmp", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`make flink`: the cluster in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="make flink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flink-port", type=int, default=FLINK_REST_PORT,
                        help="REST API and web UI port on 127.0.0.1 (--beam-master's)")
    parser.add_argument("--worker-pool-port", type=int, default=WORKER_POOL_PORT,
                        help="Beam worker pool port on 127.0.0.1 (--beam-worker-pool's)")
    parser.add_argument("--taskmanagers", type=int, default=1)
    parser.add_argument("--slots", type=int, default=2, help="task slots per TaskManager")
    parser.add_argument("--taskmanager-memory", default="2048m",
                        help="each TaskManager JVM's process size")
    parser.add_argument("--output-root", type=Path, default=REPO_ROOT / "outputs",
                        help="logs go to <output-root>/flink/logs/")
    args = parser.parse_args(argv)
    # Ctrl-C, and a plain kill, stop the cluster in order even when this was started with SIGINT
    # ignored (a shell's background job); kill -9 leaves it to the children's death signal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: signal.default_int_handler(signal.SIGINT, None))
    workdir = args.output_root / "flink"
    for port in (args.flink_port, args.worker_pool_port):
        if _accepts(port):
            print(f"error: something already listens on {HOST}:{port} (another `make flink`?); "
                  "choose another with ARGS='--flink-port N --worker-pool-port M'",
                  file=sys.stderr)
            return 2
    print(f"Starting Flink {flink_install.FLINK_VERSION}: a JobManager, {args.taskmanagers} "
          f"TaskManager(s) of {args.slots} slots, and Beam's worker pool...", flush=True)
    try:
        with local_flink(args.flink_port, args.worker_pool_port, args.taskmanagers, args.slots,
                         args.taskmanager_memory, workdir=workdir) as cluster:
            print(f"  Flink web UI: {cluster.url}\n"
                  f"  worker pool:  {cluster.worker_pool} (Beam EXTERNAL environment: this "
                  "virtualenv, no Docker)\n"
                  f"  logs:         {workdir / 'logs'}/\n"
                  f"  run on it:    make pipeline ARGS=\"--beam-runner flink --beam-master "
                  f"{cluster.master}"
                  + ("" if args.worker_pool_port == WORKER_POOL_PORT
                     else f" --beam-worker-pool {cluster.worker_pool}") + "\"", flush=True)
            missing = flink_install.missing_job_server()
            if missing:
                print(f"  warning: {missing}", flush=True)
            print("Ctrl-C stops it.", flush=True)
            while all(p.poll() is None for p in cluster.processes.values()):
                time.sleep(1)
            dead = [n for n, p in cluster.processes.items() if p.poll() is not None]
            print(f"error: {', '.join(dead)} stopped (logs: {workdir / 'logs'}/)",
                  file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nStopped the Flink cluster and the worker pool.")
        return 130
    except (FileNotFoundError, RuntimeError, TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
