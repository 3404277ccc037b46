"""Output capture: what the stack prints goes to the log file, and nothing of it outlives the
call (file descriptors, absl verbosity, the terminal handle), even when the work raised."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
from absl import logging as absl_logging

from pipeline.console.output_capture import captured_output


def _fd_identity(fd: int) -> tuple[int, int]:
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino


@pytest.mark.parametrize("fails", [False, True])
def test_capture_logs_child_output_and_leaves_nothing_changed(tmp_path, fails):
    log = tmp_path / "logs" / "run.log"
    before = (_fd_identity(1), _fd_identity(2), absl_logging.get_verbosity())
    open_fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with captured_output(log) as terminal:
            # A child process writes to the inherited descriptors, as Beam workers do.
            subprocess.run([sys.executable, "-c", "import sys; print('to stdout'); "
                            "print('to stderr', file=sys.stderr)"], check=True)
            assert absl_logging.get_verbosity() == absl_logging.INFO
            if fails:
                raise RuntimeError("stage failed")
    assert (_fd_identity(1), _fd_identity(2), absl_logging.get_verbosity()) == before
    assert terminal.closed
    assert set(os.listdir("/proc/self/fd")) == open_fds  # no descriptor left open
    assert log.read_text().splitlines() == ["to stdout", "to stderr"]

