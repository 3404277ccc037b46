"""A warm worker for the orchestrated tasks: one process that has imported TensorFlow, TFX, Beam,
TFDV, TFMA, Great Expectations and MLflow once, and forks a child per task (docs/team.md).

Every Airflow task is `python -m pipeline run-node ...` (or `track-run`), a new process that
spends ~5.5 s importing those libraries before its stage's work. With a worker running, that
process is a thin client: it connects to the worker's Unix socket, passes its argv, cwd,
environment, umask and its stdin/stdout/stderr file descriptors (SCM_RIGHTS), and the worker
forks; the child takes them over and runs `python -m pipeline` exactly as the client would have
(this repo's modules are imported afresh in every child, so a code change takes effect in the
next task); the client exits with the child's exit code, or dies of the child's signal, so
Airflow's exit-code handling (no-retry codes, the skip code) is unchanged.

- Where: `<output-root>/.warm-worker/` (mode 0700, checked), `<key>.sock`, `<key>.lock`,
  `<key>.log`. The key is a fingerprint of what the worker preloads: the venv's Python, every
  installed distribution (the names and times of the *.dist-info folders on sys.path), this
  module's code, the set-up it calls first (the command line's unused_imports.keep_out), the
  preload list and the environment variables read at import. A reinstall changes the key, so
  the old worker is never used again (it refuses a request whose key is not its own, and stops
  when it sees the change).
- Who starts it: `make airflow` as Airflow starts (`python -m pipeline warm-worker --keep-while
  <pid>`: kept while that process runs); check-inputs (the run's first task) when none is
  running and the stages are to run; a heavy task that finds none (it then waits for the
  worker's imports rather than importing the libraries itself). The worker holds `<key>.lock`
  while it lives: of two workers started at once, one serves and the other waits up to 2 s for
  the lock (a worker that is stopping releases it in moments), then exits. stop() also writes
  STOP_MARKER: a worker asked for before that stop (waiting for the lock, or not yet listening,
  so stop() found no socket of its to remove) does not serve; one asked for later does. It
  listens before it imports, so a task that connects during the imports waits in the socket's
  backlog; it forks once READY_AFTER are imported and imports the rest between tasks.
- When it stops: after IDLE_ENV seconds (default 300) without a task (counted once the
  keep-while process has ended), when the installed packages or this module change (checked
  every KEY_CHECK_S while idle), when its socket file is removed (stop()), or on SIGTERM (its
  running tasks get SIGTERM too).
- Fork safety: the worker imports first the libraries whose thread pools start at import and
  survive fork by design (OpenBLAS in numpy and SciPy, jemalloc in pyarrow), notes those
  threads, then the rest. Before each fork it checks /proc/self/task: a thread that was not
  there then, a Python thread, or TensorFlow's runtime initialised, and it refuses the task
  (the client runs it in-process, its one line saying why).
- Signals: the client forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 through the
  socket to the child's process group. A client that dies (SIGKILL) closes the socket: the
  worker sends the child SIGTERM, then SIGKILL after KILL_GRACE_S. A child whose worker dies
  gets SIGTERM (PR_SET_PDEATHSIG), and its client exits 1.
- Fallback: no worker reachable, a refused task, a folder that is not private: the task runs
  in-process as before, saying so in one line on stderr. ENV_SWITCH=0 turns the worker off.
- Secrets: the environment sent over the socket may hold a tracking URL with its password: it
  goes to the child only, never to the worker's log; the worker itself is started without the
  variables that hold URLs or passwords.

Standard library only, until the worker imports the libraries it preloads.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import gc
import hashlib
import importlib
import importlib.util
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

ENV_SWITCH = "CSV2MODEL_WARM_WORKER"  # 0, off, false or no: every task runs in-process
IDLE_ENV = "CSV2MODEL_WARM_WORKER_IDLE_S"
DEFAULT_IDLE_S = 300.0
FOLDER = ".warm-worker"
STOP_MARKER = "stop-requested"  # written by stop(): when the last stop was asked for
PROTOCOL = 1
KILL_GRACE_S = 10.0  # after its client died, the child's time to end on SIGTERM
START_WAIT_S = 5.0  # how long a task waits for the socket of a worker it started
PRELOAD_WAIT_S = 180.0  # how long a task waits for a worker to answer (its imports included)
KEY_CHECK_S = 10.0  # an idle worker checks this often that the install is still what it loaded
CHILD_MARK = "_csv2model_warm_child"  # in sys.modules of a child: it runs the task itself

# Imported first: their thread pools start at import and are made for fork (OpenBLAS shuts its
# pool down around fork, jemalloc's background thread is re-created in the child).
FORK_SAFE_POOLS = ("numpy", "scipy.linalg", "pyarrow")
# What the stages' tasks import, measured on penguins: with these loaded, a task's own imports
# of the libraries' other modules take ~0.4 s. The worker forks as soon as READY_AFTER are in
# (what every stage's task loads: TFX's launcher, TensorFlow, Beam) and imports the rest
# between tasks, in the order the stages need them.
READY_AFTER = ("tensorflow", "tfx.orchestration.portable.launcher", "apache_beam")
PRELOAD = FORK_SAFE_POOLS + READY_AFTER + (
    "great_expectations", "tensorflow_data_validation", "tensorflow_transform", "tf_keras",
    "tensorflow_model_analysis", "mlflow", "mlflow.pyfunc",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")
# Read at import by the libraries above: a worker preloaded with other values is another worker.
IMPORT_ENV = ("PYTHONPATH", "PYTHONHASHSEED", "TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL",
              "TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES",
              "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MLFLOW_DISABLE_TELEMETRY")
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
# Not passed to the worker's own environment (each child still gets the client's whole one).
SECRET_NAME = re.compile(r"URL|URI|PASSWORD|SECRET|TOKEN|CONN|KEY", re.IGNORECASE)
REPO_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


class Unusable(RuntimeError):
    """Why a task cannot go through a worker; it then runs in-process."""


def disabled(environ=None) -> bool:
    value = (os.environ if environ is None else environ).get(ENV_SWITCH, "").strip().lower()
    return value in ("0", "off", "false", "no")


# --- where and which worker -------------------------------------------------------------------

def private_folder(output_root: str | Path) -> Path:
    """<output-root>/.warm-worker, made owner-only; refused if anyone else could use it."""
    folder = Path(output_root).resolve() / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.geteuid():
        raise Unusable(f"{folder} is not a folder of this user's")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def worker_key(preload: Sequence[str], setup: Sequence[str] = (),
               path: Sequence[str] | None = None, environ=None) -> str:
    """What a worker preloads: the Python, the installed distributions, this module, the
    preload list, the import-time environment and sys.path. A stat of the site-packages
    folders' entries: a few milliseconds."""
    environ = os.environ if environ is None else environ
    # `python -c` and `python -m` from one folder: '' and that folder's path.
    path = [entry or os.getcwd() for entry in (sys.path if path is None else path)]
    digest = hashlib.sha256()
    digest.update(json.dumps([PROTOCOL, sys.executable, os.path.realpath(sys.executable),
                              sys.version,
                              list(preload), list(setup), path,
                              [(name, environ.get(name)) for name in IMPORT_ENV]]).encode())
    digest.update(Path(__file__).read_bytes())
    for call in setup:  # the code the worker runs before its imports
        origin = importlib.util.find_spec(call.split(":")[0]).origin
        digest.update(Path(origin).read_bytes())
    for entry in path:
        try:
            listing = sorted(os.scandir(entry), key=lambda e: e.name)
        except OSError:
            continue
        for item in listing:
            if item.name.endswith((".dist-info", ".egg-info", ".pth", ".egg-link")):
                with contextlib.suppress(OSError):
                    digest.update(f"{entry}/{item.name} {item.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _address(folder: Path, name: str) -> tuple[str, int | None]:
    """A socket path short enough for AF_UNIX (108 bytes): through /proc/self/fd when long."""
    path = str(folder / name)
    if len(path.encode()) < 100:
        return path, None
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{name}", fd


def _connect(folder: Path, key: str) -> socket.socket:
    address, fd = _address(folder, f"{key}.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def _worker_running(folder: Path, key: str) -> bool:
    """Does a process hold the worker's lock (serving, or importing before it serves)?"""
    with open(folder / f"{key}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def start(folder: Path, key: str, preload: Sequence[str], setup: Sequence[str] = (),
          idle_s: float | None = None, keep_while: int | None = None) -> subprocess.Popen:
    """Start a worker detached (its own session, no descriptor of the caller's). keep_while:
    a process id; the worker's idle time counts only once that process has ended."""
    if idle_s is None:
        idle_s = float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    env = {name: value for name, value in os.environ.items() if not SECRET_NAME.search(name)}
    for name in IMPORT_ENV:  # what the key holds, even if its name looked like a secret's
        if name in os.environ:
            env[name] = os.environ[name]
    command = [sys.executable, "-m", "pipeline.runners.warm_worker", "serve", "--folder",
               str(folder), "--key", key, "--preload", ",".join(preload),
               "--setup", ",".join(setup), "--idle-s", str(idle_s),
               "--started", repr(time.time())]
    if keep_while:
        command += ["--keep-while", str(keep_while)]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def stop(output_root: str | Path, wait_s: float = 0.0) -> int:
    """Ask every worker of this output root to stop: each exits once its tasks end (and at
    once when it has none, or after the module it is importing). wait_s: wait up to that long
    for them to exit (the bench, before its next measurement). Returns how many were asked."""
    folder = Path(output_root).resolve() / FOLDER
    if folder.is_dir():
        # For a worker started before this call that is not listening yet (still waiting for
        # the lock of one that stops, or not yet bound): it reads the marker and does not serve.
        (folder / STOP_MARKER).write_text(f"{time.time()}\n")
    count = 0
    for sock in folder.glob("*.sock"):
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
            count += 1
    deadline = time.monotonic() + wait_s
    for lock in folder.glob("*.lock") if wait_s else ():
        while time.monotonic() < deadline and _worker_running(folder, lock.stem):
            time.sleep(0.05)
    return count


# --- the client: the task's own process -------------------------------------------------------

def _say(line: str) -> None:
    sys.stderr.write(f"warm worker: {line}\n")
    sys.stderr.flush()


def ensure_started(output_root: str | Path, preload: Sequence[str] = PRELOAD,
                   setup: Sequence[str] = (), idle_s: float | None = None,
                   keep_while: int | None = None, wait: bool = False,
                   key: str | None = None) -> bool:
    """Start the worker if none is running (the run's first task). Never waits for its
    imports; wait: until it listens (then stop() reaches it). key: worker_key() as this
    process started, when its imports have changed sys.path since. Returns whether one was
    started."""
    if disabled():
        return False
    try:
        folder = private_folder(output_root)
        key = key or worker_key(preload, setup)
        if _worker_running(folder, key):
            return False
        start(folder, key, preload, setup, idle_s, keep_while)
        deadline = time.monotonic() + (START_WAIT_S if wait else 0)
        while not (folder / f"{key}.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True
    except (OSError, Unusable) as e:
        _say(f"not started ({e})")
        return False


def listening(output_root: str | Path, key: str) -> bool:
    """Whether the output root's worker of this key is there to take a task (it may still be
    importing): its socket exists and a process holds its lock. Creates nothing."""
    if disabled():
        return False
    folder = Path(output_root).resolve() / FOLDER
    try:
        if not folder.is_dir():
            return False
        return (folder / f"{key}.sock").exists() and _worker_running(folder, key)
    except OSError:
        return False


def run_task(output_root: str | Path, argv: Sequence[str], preload: Sequence[str] = PRELOAD,
             setup: Sequence[str] = (), key: str | None = None, start: bool = True,
             module: str = "pipeline") -> int | None:
    """Run `python -m pipeline <argv[1:]>` in a child of the worker; returns its exit code, or
    None when the task must run in-process (one line on stderr says why). A child killed by a
    signal kills this process with the same signal. start: start a worker when none runs (and
    wait for its imports), else run in-process. module: what the child runs as __main__."""
    if disabled() or CHILD_MARK in sys.modules:
        return None
    try:
        folder = private_folder(output_root)
        key = key or worker_key(preload, setup)
        try:
            sock = _connect(folder, key)
        except (FileNotFoundError, ConnectionRefusedError):
            sock = _start_and_connect(folder, key, preload, setup) if start else None
    except (OSError, Unusable) as e:
        _say(f"unreachable ({e}); running this task in-process")
        return None
    if sock is None:
        _say("none is running" + (" (one is starting for the next tasks)" if start else "")
             + "; running this task in-process")
        return None
    with sock:
        return _Client(sock, key, list(argv), module).run()


def _start_and_connect(folder: Path, key: str, preload, setup) -> socket.socket | None:
    if not _worker_running(folder, key):
        start(folder, key, preload, setup)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ConnectionRefusedError):
            return _connect(folder, key)
        time.sleep(0.05)
    return None


class _Client:
    def __init__(self, sock: socket.socket, key: str, argv: list[str], module: str):
        self.sock = sock
        self.key = key
        self.argv = argv
        self.module = module
        self.child: int | None = None
        self.pending: list[int] = []

    def run(self) -> int | None:
        umask = os.umask(0)
        os.umask(umask)
        request = json.dumps({"protocol": PROTOCOL, "key": self.key, "argv": self.argv,
                              "module": self.module, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
                              "path": sys.path}).encode()
        data = struct.pack("!I", len(request)) + request
        previous = {s: signal.signal(s, self._forward) for s in FORWARDED_SIGNALS}
        try:
            try:
                sent = socket.send_fds(self.sock, [data], [0, 1, 2])
                # Only what is left: sendall(b"") still calls send() once, which on a
                # connection the worker already closed (a task that ended at once, under load)
                # failed with EPIPE, and the task, already run by the worker, ran here again.
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            except OSError as e:  # a closed stdin, say: the task runs here, as before
                _say(f"could not pass the task ({e}); running this task in-process")
                return None
            self.sock.settimeout(PRELOAD_WAIT_S)
            replies = self.sock.makefile("rb")
            while True:
                try:
                    line = replies.readline()
                except socket.timeout:
                    if self.child is None:
                        _say(f"no answer in {PRELOAD_WAIT_S:.0f} s; running this task "
                             "in-process")
                        return None
                    continue
                if not line:
                    if self.child is None:
                        _say("closed the connection before starting the task; running it "
                             "in-process")
                        return None
                    _say("stopped before the task ended")
                    return 1
                message = json.loads(line)
                if "refused" in message:
                    _say(f"{message['refused']}; running this task in-process")
                    return None
                if "pid" in message:
                    self.child = message["pid"]
                    self.sock.settimeout(None)  # the task takes as long as it takes
                    for signum in self.pending:
                        self._send_signal(signum)
                if "exit" in message:
                    return self._exit(message["exit"])
        except (BrokenPipeError, ConnectionResetError) as e:
            if self.child is None:
                _say(f"unreachable ({e}); running this task in-process")
                return None
            _say("stopped before the task ended")
            return 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _forward(self, signum, frame) -> None:
        if self.child is None:  # nothing started yet: the signal ends this process, as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._send_signal(signum)

    def _send_signal(self, signum: int) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps({"signal": int(signum)}).encode() + b"\n")

    @staticmethod
    def _exit(code: int) -> int:
        if code < 0:  # the child died of a signal: so does this process, for its parent to see
            signal.signal(-code, signal.SIG_DFL)
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), -code)
            return 128 - code
        return code


# --- the worker -------------------------------------------------------------------------------

def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def fork_unsafe_now() -> str | None:
    """Why forking this process now would not be safe, or None, every thread there is now
    allowed: before a run's first stage those are the native pools the imports started (OpenBLAS,
    jemalloc); what is refused is a Python thread or TensorFlow's runtime. The check the run's
    own forks use (the checks' process, the MLflow tracking process)."""
    return fork_unsafe(_threads())


def fork_unsafe(allowed_threads: set[str]) -> str | None:
    """Why forking now would not be safe, or None."""
    extra = _threads() - allowed_threads
    if extra:
        return (f"not safe to fork: {len(extra)} thread(s) started after the fork-safe pools "
                f"({', '.join(FORK_SAFE_POOLS)})")
    if threading.active_count() > 1:
        return "not safe to fork: Python threads are running"
    context = sys.modules.get("tensorflow.python.eager.context")
    if getattr(getattr(context, "_context", None), "_context_handle", None) is not None:
        return "not safe to fork: TensorFlow's runtime is initialised"
    return None


def _repo_modules() -> list[str]:
    """This repository's modules in sys.modules (not the venv's)."""
    names = []
    for name, module in sys.modules.items():
        if name == "__main__":  # the worker's own code, running the child until it exits
            continue
        file = getattr(module, "__file__", None) or ""
        if file.startswith(str(REPO_ROOT) + os.sep) and not file.startswith(sys.prefix + os.sep):
            names.append(name)
    return names


class _Task:
    def __init__(self, conn: socket.socket, pid: int, what: str):
        self.conn = conn
        self.pid = pid
        self.what = what
        self.started = time.monotonic()
        self.kill_at: float | None = None


class Worker:
    def __init__(self, folder: Path, key: str, preload: Sequence[str], setup: Sequence[str],
                 idle_s: float, keep_while: int | None = None, started: float | None = None):
        self.keep_while = keep_while
        # When it was asked for (start()): a stop() asked after that ends it before it serves.
        self.started = time.time() if started is None else started
        self.folder = folder
        self.key = key
        self.preload = list(preload)
        self.setup = list(setup)
        self.idle_s = idle_s
        self.tasks: dict[int, _Task] = {}
        self.allowed_threads: set[str] = set()
        # Pools first (their threads are allowed), then the rest in the list's order.
        pools = [m for m in self.preload if m in FORK_SAFE_POOLS]
        self.to_import = pools + [m for m in self.preload if m not in FORK_SAFE_POOLS]
        ready = [i for i, m in enumerate(self.to_import) if m in READY_AFTER]
        # Tasks wait in the socket's backlog until these are imported (all without READY_AFTER).
        self.before_ready = (ready[-1] + 1) if ready else len(self.to_import)
        self.ready = False
        self.stopping = False
        self.last_active = time.monotonic()
        self.key_checked = time.monotonic()
        # As the worker started: the key is computed from these (imports add to both).
        self.path = list(sys.path)
        self.environ = dict(os.environ)

    def log(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {line}", flush=True)

    def serve(self) -> int:
        lock = open(self.folder / f"{self.key}.lock", "a")
        if not self._lock(lock):
            return 0  # another worker serves this key
        if self.stop_asked():  # while it waited for a stopping worker's lock
            return 0
        log = os.open(self.folder / f"{self.key}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                      0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        self.lock = lock
        own = worker_key(self.preload, self.setup, self.path, self.environ)
        if own != self.key:
            self.log(f"refusing to serve: started for key {self.key}, but this Python's "
                     f"libraries make {own}")
            return 1
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, fd = _address(self.folder, f"{self.key}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / f"{self.key}.sock")
        self.listener.bind(address)
        if fd is not None:
            os.close(fd)
        self.listener.listen(64)
        self.sock_inode = os.stat(self.folder / f"{self.key}.sock").st_ino
        if self.stop_asked():  # before the socket existed for stop() to remove
            self.log("a stop was asked for as this worker started: not serving")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / f"{self.key}.sock")
            self.listener.close()  # a client that connected meanwhile runs its task itself
            return 0
        self.log(f"listening on {self.key}.sock; importing {', '.join(self.to_import)}")
        for call in self.setup:  # what the command line does first (unused_imports.keep_out)
            module, function = call.split(":")
            getattr(importlib.import_module(module), function)()
        self.import_started = time.monotonic()
        return self._loop()

    def stop_asked(self) -> bool:
        """Whether stop() was called after this worker was asked for."""
        try:
            asked = float((self.folder / STOP_MARKER).read_text())
        except (FileNotFoundError, ValueError):
            return False
        return asked >= self.started

    def _lock(self, lock) -> bool:
        deadline = time.monotonic() + 2.0  # a worker that is stopping releases it in moments
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)

    def _import_next(self) -> None:
        """One module of the preload list; the worker serves tasks between two imports once
        the first before_ready are in."""
        name = self.to_import.pop(0)
        if name not in FORK_SAFE_POOLS and not self.allowed_threads:
            self.allowed_threads = _threads()
        try:
            __import__(name)
        except Exception as e:  # noqa: BLE001 - a task that needs it will say so itself
            self.log(f"could not import {name}: {type(e).__name__}: {e}")
        self.before_ready -= 1
        done = not self.to_import
        if done and not self.allowed_threads:
            self.allowed_threads = _threads()
        if done:
            gc.collect()
        if (self.before_ready <= 0 and not self.ready) or done:
            sys.stdout.flush()
            sys.stderr.flush()
            self.log(f"imported {'everything' if done else 'enough to fork'} in "
                     f"{time.monotonic() - self.import_started:.1f} s, {len(sys.modules)} "
                     f"modules, {len(_threads())} threads; "
                     + (fork_unsafe(self.allowed_threads) or "safe to fork"))
        if self.before_ready <= 0 and not self.ready:
            self.ready = True
            self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.last_active = time.monotonic()

    def _loop(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.wake = (wake_r, wake_w)
        self.selector = selectors.DefaultSelector()
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")  # the listener: once ready
        if not self.to_import:  # nothing to import: ready at once
            self.allowed_threads = _threads()
            self.ready = True
            self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        while True:
            events = self.selector.select(timeout=0 if self.to_import else 0.5)
            if not events and self.to_import:
                self._import_next()
            for key, _ in events:
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while wake_r.recv(4096):
                            pass
                else:
                    self._from_client(key.data)
            self._reap()
            self._kill_overdue()
            if self._should_stop():
                self._stop_listening()
                if not self.tasks:
                    self.log("stopped")
                    return 0

    def _on_term(self, signum, frame) -> None:
        self.stopping = True
        for task in self.tasks.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.pid, signal.SIGTERM)

    def _should_stop(self) -> bool:
        if self.stopping:
            return True
        try:
            if os.stat(self.folder / f"{self.key}.sock").st_ino != self.sock_inode:
                self.log("socket file replaced: stopping")
                self.stopping = True
        except FileNotFoundError:
            self.log("socket file removed: stopping")
            self.stopping = True
        if self.keep_while and not os.path.exists(f"/proc/{self.keep_while}"):
            self.log(f"process {self.keep_while} ended: idle time counts from now")
            self.keep_while = None
            self.last_active = time.monotonic()
        if (not self.tasks and not self.keep_while
                and time.monotonic() - self.last_active > self.idle_s):
            self.log(f"idle for {self.idle_s:.0f} s: stopping")
            self.stopping = True
        if not self.tasks and time.monotonic() - self.key_checked > KEY_CHECK_S:
            self.key_checked = time.monotonic()
            if worker_key(self.preload, self.setup, self.path, self.environ) != self.key:
                self.log("the installed packages or this module changed: stopping")
                self.stopping = True
        return self.stopping

    def _stop_listening(self) -> None:
        if self.listener.fileno() < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.folder / f"{self.key}.sock").st_ino == self.sock_inode:
                os.unlink(self.folder / f"{self.key}.sock")
        self.listener.setblocking(False)
        while True:  # tasks that connected before the socket file went: served all the same
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, OSError):
                break
            conn.setblocking(True)
            self._serve_request(conn)
        if self.ready:
            self.selector.unregister(self.listener)
        self.listener.close()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        self._serve_request(conn)

    def _serve_request(self, conn: socket.socket) -> None:
        self.last_active = time.monotonic()
        fds: list[int] = []
        try:
            conn.settimeout(10)
            request, fds = self._read_request(conn)
            refused = self._refusal(request, fds)
            if refused:
                self.log(f"refused a task: {refused}")
                conn.sendall(json.dumps({"refused": refused}).encode() + b"\n")
                conn.close()
                return
            self._fork(conn, request, fds)
        except (OSError, ValueError, KeyError) as e:
            self.log(f"dropped a request: {type(e).__name__}: {e}")
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
        data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
        if len(data) < 4:
            raise ValueError("no request")
        size = struct.unpack("!I", data[:4])[0]
        body = bytearray(data[4:])
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ValueError("the request ended early")
            body += chunk
        return json.loads(body), list(fds)

    def _refusal(self, request: dict, fds: list[int]) -> str | None:
        if request.get("protocol") != PROTOCOL or request.get("key") != self.key:
            return (f"this worker serves libraries {self.key}, the task has {request.get('key')}"
                    " (installed packages or settings changed)")
        if len(fds) != 3:
            return "the task did not pass its stdin, stdout and stderr"
        current = worker_key(self.preload, self.setup, self.path, self.environ)
        if current != self.key:
            self.stopping = True
            return "the installed packages changed since this worker imported them (stopping)"
        if self.stopping:
            return "stopping"
        return fork_unsafe(self.allowed_threads)

    def _fork(self, conn: socket.socket, request: dict, fds: list[int]) -> None:
        argv = request["argv"]
        what = " ".join(argv[1:2] + [argv[i + 1] for i, a in enumerate(argv[:-1])
                                     if a == "--node"])
        # What the imports set in the environment (TensorFlow: TF2_BEHAVIOR, KMP_*): a task
        # importing them itself would have it too.
        self.import_env = {name: value for name, value in os.environ.items()
                           if self.environ.get(name) != value}
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # fewer pages copied into each child by the collector's bookkeeping
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                code = self._child(conn, request, fds)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        conn.settimeout(None)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        self.tasks[pid] = _Task(conn, pid, what)
        self.selector.register(conn, selectors.EVENT_READ, self.tasks[pid])
        self.log(f"task {what}: child {pid}")

    def _child(self, conn: socket.socket, request: dict, fds: list[int]) -> int:
        os.setsid()  # its own process group: signals reach whatever it starts
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT,
                       signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if os.getppid() == 1:  # the worker died before the death signal was set
            return 1
        # Nothing of the worker's stays open in the task: its socket, lock, other tasks.
        self.selector.close()
        for sock in (self.listener, *self.wake, conn, *(t.conn for t in self.tasks.values())):
            sock.close()
        self.lock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        fds.clear()
        env = request["env"]
        os.umask(request["umask"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        for name, value in self.import_env.items():
            if name in self.environ:  # changed by an import: as the import would
                os.environ[name] = value
            else:  # added by an import: unless the task has its own
                os.environ.setdefault(name, value)
        sys.path[:] = request["path"]
        sys.argv = list(request["argv"])
        unbuffered = bool(env.get("PYTHONUNBUFFERED"))
        sys.stdout.reconfigure(line_buffering=unbuffered or sys.stdout.isatty())
        sys.stderr.reconfigure(line_buffering=True)
        for name in _repo_modules():  # this repo's code as it is on disk now
            del sys.modules[name]
        numpy = sys.modules.get("numpy")
        if numpy is not None:  # a fresh process would draw a fresh seed
            numpy.random.seed()
        import runpy
        import types

        sys.modules[CHILD_MARK] = types.ModuleType(CHILD_MARK)
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        return 0  # pipeline/__main__.py ends the process itself

    def _from_client(self, task: _Task) -> None:
        try:
            data = task.conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the client is gone (killed): its task must not run on
            self.selector.unregister(task.conn)
            self.log(f"task {task.what}: client gone, SIGTERM to child {task.pid}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.pid, signal.SIGTERM)
            task.kill_at = time.monotonic() + KILL_GRACE_S
            return
        for line in data.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                signum = int(json.loads(line)["signal"])
                if signum in FORWARDED_SIGNALS:
                    self.log(f"task {task.what}: signal {signum} to child {task.pid}")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(task.pid, signum)

    def _reap(self) -> None:
        while self.tasks:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            task = self.tasks.pop(pid, None)
            if task is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            self.log(f"task {task.what}: child {pid} exit {code} after "
                     f"{time.monotonic() - task.started:.1f} s")
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.selector.unregister(task.conn)
            with contextlib.suppress(OSError):
                task.conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
            task.conn.close()
            self.last_active = time.monotonic()

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for task in self.tasks.values():
            if task.kill_at is not None and now > task.kill_at:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(task.pid, signal.SIGKILL)
                task.kill_at = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.runners.warm_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a worker (tasks start it themselves)")
    serve.add_argument("--folder", type=Path, required=True)
    serve.add_argument("--key", required=True)
    serve.add_argument("--preload", default=",".join(PRELOAD))
    serve.add_argument("--setup", default="", help="module:function,... to call before the "
                       "imports, as the command line does first thing")
    serve.add_argument("--idle-s", type=float, default=DEFAULT_IDLE_S)
    serve.add_argument("--keep-while", type=int, default=None,
                       help="a process id: idle time counts only once it has ended")
    serve.add_argument("--started", type=float, default=None,
                       help="when the worker was asked for (time.time()); default: now")
    stop_parser = commands.add_parser("stop", help="stop the workers of an output root")
    stop_parser.add_argument("--output-root", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "stop":
        print(f"asked {stop(args.output_root)} worker(s) to stop")
        return 0
    split = lambda text: [part for part in text.split(",") if part]  # noqa: E731
    return Worker(args.folder, args.key, split(args.preload), split(args.setup),
                  args.idle_s, args.keep_while, args.started).serve()


if __name__ == "__main__":
    raise SystemExit(main())
