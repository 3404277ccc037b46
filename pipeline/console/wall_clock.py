"""Whole-process wall time: what "Done in Ns" reports, imports and MLflow logging included."""
from __future__ import annotations

import os
import time

_IMPORTED_AT = time.monotonic()


def process_seconds() -> float:
    """Seconds since this process started, from the kernel's record of its start (Linux), else
    since this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # Field 22 of stat (the 20th after the command name): start time in clock ticks since
        # boot. psutil adds it to the boot time, which /proc gives in whole seconds only.
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED_AT
