"""Child processes of a local cluster (Flink's JVMs, the worker pool): each in its own process
group, so Ctrl-C reaches only the process that started them (which then stops them in order),
and each told by the kernel to stop if that process dies without cleaning up (kill -9, a crashed
test), so no JVM outlives the session that started it."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start(command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """`command` in a new session (its own process group), output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=dict(env) if env else None,
                                cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent)


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the process's whole group (a worker pool's SDK workers too), SIGKILL to what
    is left after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; make sure its group is too
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return


def group_alive(pid: int) -> bool:
    """Whether any process of the group led by pid is still there."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
