"""Timing a command the way a user lives it: the whole process, from start to exit, measured
around a subprocess, with the peak resident memory of it and its children (Beam workers)."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

STAGE_LINE = re.compile(r"^\s+(\S+)\s+(ran|cached|resolved|FAILED)\s+([\d.]+)s")
_DONE_LINE = re.compile(r"^Done in ([\d.]+)s")


# A child younger than this is left out of the tree's memory: one caught between fork and exec
# (as the tracking step starts its subprocesses) maps every page of its parent, and summed RSS
# counted them twice (a 1.5M run's peak read 3,852 MB, exactly twice the 1,926 MB the pipeline
# process held). Beam's workers live for whole stages. Reading PSS instead walks each process's
# page tables under its memory lock at every sample: the Trainer ran 40% slower under it.
# psutil's create_time counts from the boot time in whole seconds: an age reads up to 1 s high.
_CHILD_MIN_AGE_S = 1.5


def _tree_rss(pid: int) -> int:
    """Resident memory of the process and its children older than _CHILD_MIN_AGE_S; of a child
    that is a fork without an exec, only the memory it has to itself."""
    import psutil

    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
        command = root.cmdline()
    except psutil.NoSuchProcess:
        return 0
    now = time.time()
    total = 0
    for proc in [root, *children]:
        try:
            if proc is not root and now - proc.create_time() < _CHILD_MIN_AGE_S:
                continue
            if proc is not root and proc.cmdline() == command:
                # The run's checks (pipeline/runners/check_branch.py) fork for seconds: their
                # parent's pages are shared, and only the pages the child wrote are its own.
                total += _unique_set_size(proc)
                continue
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _unique_set_size(proc) -> int:
    """The pages only this process maps (USS), from /proc/<pid>/smaps_rollup.

    psutil's memory_full_info reads /proc/<pid>/smaps, whose page-table walk holds the process's
    memory lock throughout, five times a second here. In `make bench`'s scoring of 1.5M rows the
    checks' process (Great Expectations on pandas frames, allocating and freeing large arrays)
    read a contract stage of 42 s instead of ~21 s, the run 69-70 s, in every bench with it (5
    of 5 over two days); reading the child's RSS instead, 48.5 s, and this rollup, 50.5 s. The
    same 42 s stage once came by hand without any sampler (1 run in ~10), so the walk made
    something else likelier, not the only cause. The rollup gives the same sums and lets go of
    the lock when the process needs it (Linux 5.8+)."""
    import psutil

    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as rollup:
            fields = dict(line.split(":", 1) for line in rollup.read().splitlines()[1:])
    except FileNotFoundError:
        raise psutil.NoSuchProcess(proc.pid) from None
    except OSError:  # no smaps_rollup (an older kernel): psutil's walk of smaps
        return proc.memory_full_info().uss
    kilobytes = sum(int(fields.get(name, "0 kB").split()[0])
                    for name in ("Private_Clean", "Private_Dirty", "Private_Hugetlb"))
    return kilobytes * 1024


@dataclasses.dataclass
class PipelineRun:
    wall_seconds: float  # the whole process: start to exit, imports and MLflow logging included
    peak_rss_mb: float  # the whole run: the pipeline process and its Beam worker processes
    stages: dict[str, float]  # stage -> seconds
    stage_peak_rss_mb: dict[str, float]  # stage -> peak RSS while it ran
    states: dict[str, str]
    stdout: str
    returncode: int = 0
    done_in_seconds: float | None = None  # what the CLI's own "Done in Ns" line said
    # (seconds since the command started, line) for every output line, as it arrived: where
    # a run's fixed costs go (pipeline/bench/fixed_costs.py).
    line_seconds: list[tuple[float, str]] = dataclasses.field(default_factory=list)


def measure(command: list[str], check: bool = True, env: dict[str, str] | None = None,
            log: Path | None = None) -> PipelineRun:
    """Run `command`, sampling the RSS of it and its children every 0.2 s.

    Stage lines of the pipeline's summary ("  Transform   ran   12.3s ...") are parsed as they
    come: the peak between two such lines is the stage's peak (the first stage's window also
    holds the start-up imports). stderr goes with stdout. check: raise RuntimeError on a
    non-zero exit. log: also write the output there."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lock = threading.Lock()
    peak = {"run": 0, "stage": 0, "last": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            rss = _tree_rss(proc.pid)
            with lock:
                peak["run"] = max(peak["run"], rss)
                peak["stage"] = max(peak["stage"], rss)
                peak["last"] = rss
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stages, stage_peaks, states, lines, line_seconds = {}, {}, {}, [], []
    done_in = None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        line_seconds.append((time.perf_counter() - started, line.rstrip("\n")))
        match = STAGE_LINE.match(line)
        if match:
            with lock:
                stage_peaks[match[1]] = peak["stage"] / 2**20
                # A stage shorter than one sample still holds at least what is resident now.
                peak["stage"] = peak["last"]
            stages[match[1]] = float(match[3])
            states[match[1]] = match[2]
        elif match := _DONE_LINE.match(line):
            done_in = float(match[1])
    proc.wait()
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    stdout = "".join(lines)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(command)}\n{stdout}\nexit {proc.returncode} after "
                       f"{wall:.1f}s\n")
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({' '.join(command)}):\n{stdout[-3000:]}")
    return PipelineRun(wall, peak["run"] / 2**20, stages, stage_peaks, states, stdout,
                       proc.returncode, done_in, line_seconds)


def pipeline_command(*args: str) -> list[str]:
    """`python -m pipeline <args>` with this interpreter."""
    return [sys.executable, "-m", "pipeline", *args]


# This machine's kernel pages out file pages left unread for about a minute (a DAMON pageout
# scheme: /sys/kernel/mm/damon/admin/kdamonds/0, pages 12 aggregation intervals of 5 s old),
# so the first process after a pause reads its imports from disk again: TensorFlow, TFX, Beam,
# TFT, TFMA, TFDV, GX and MLflow imported in 28 s after 100 s idle, 13 s right after (taxi's
# set-up 9.8 s in a bench's first run against 4.8 s). Every timed run but the first follows
# another within seconds; without this the first would carry the pause before the bench.
def warm_page_cache() -> float:
    """Import what a run's stages import (the warm worker's PRELOAD) in a process of its own,
    untimed by the caller's measurements, so that the first timed run reads them from memory as
    every later one does; its seconds."""
    from pipeline.runners.warm_worker import PRELOAD

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {', '.join(PRELOAD)}"],
                   capture_output=True, check=True)
    return time.perf_counter() - started
