"""Send everything the TFX/Beam/TF stack prints (including from C++ and Beam worker processes,
which write to the inherited file descriptors) to a log file, and keep a handle on the real
terminal for the summary."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator, TextIO


@contextlib.contextmanager
def captured_output(log_path: Path) -> Iterator[TextIO]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1)
    from absl import logging as absl_logging

    old_verbosity = absl_logging.get_verbosity()
    try:
        with open(log_path, "a", buffering=1) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            # TFX's progress messages are INFO. Set it through absl's verbosity flag, not the
            # logger: libraries that parse absl flags mid-run reset the logger level from that
            # flag.
            absl_logging.set_verbosity(absl_logging.INFO)
            yield terminal
    finally:
        # Whatever happened, the process leaves with its own stdout, stderr and verbosity, and
        # without the terminal handle (the caller's last write through it is flushed here).
        sys.stdout.flush()
        sys.stderr.flush()
        absl_logging.set_verbosity(old_verbosity)
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        terminal.close()
