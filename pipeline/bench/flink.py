"""`make bench BENCH_SECTIONS=flink`: the taxi pipeline with its Beam stages on a local Flink
cluster (pipeline/cluster/flink_session.py) beside the DirectRunner, time and peak memory of all
processes: the pipeline and its Beam workers, and for Flink the JobManager and TaskManager JVMs,
Beam's job server and the worker pool with its SDK workers. Target (issue 27): at most 2x the
DirectRunner's time at 1.5M rows on 2 cores.

Also the same run with the Beam stages in SDK workers started by the worker pool through Beam's
portable runner (its embedded job service, no Flink): what separate SDK worker processes cost by
themselves, the Python half of a Flink run. While Beam's Flink job server is not installed
(Maven Central here does not serve it), the Flink row says so and the other two are measured.

Rows: BENCH_FLINK_ROWS (default the shipped 15,002; 1500000 for the target, written by the same
resampling as `make data-scale`). Not in the default sections: a 1.5M-row run takes long.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from pipeline.bench.process import PipelineRun, measure, pipeline_command
from pipeline.cluster import flink_install
from pipeline.cluster.flink_session import local_flink, local_worker_pool
from pipeline.config.settings import Settings, settings_args

ROWS_ENV = "BENCH_FLINK_ROWS"
BASE_ROWS = 15_002
TARGET_RATIO = 2.0


class _ChildrenPeak:
    """Peak resident memory of every process this one started (the pipeline run and, for
    Flink, the cluster's JVMs and the worker pool), sampled every 0.2 s while in the block:
    a run's memory is all of them, and the cluster's processes are not the pipeline's
    children."""

    def __enter__(self):
        import psutil

        self.peak_mb, self._done = 0.0, threading.Event()

        def watch():
            me = psutil.Process()
            while not self._done.is_set():
                total = 0
                for child in me.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
                self.peak_mb = max(self.peak_mb, total / 2**20)
                self._done.wait(0.2)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def _measured(settings: Settings, *extra: str, log: Path) -> dict:
    with _ChildrenPeak() as peak:
        run: PipelineRun = measure(pipeline_command("run", *settings_args(settings), *extra),
                                   log=log)
    return {"wall_s": run.wall_seconds, "peak_rss_mb": peak.peak_mb, "stages": run.stages}


def run_flink(root: Path, say, report: dict, epochs: int = 3) -> None:
    """Fill report with the three runs of the taxi pipeline at BENCH_FLINK_ROWS rows."""
    rows = int(os.environ.get(ROWS_ENV, BASE_ROWS))
    base = Settings(dataset="taxi", output_root=root / "runs", epochs=epochs, min_auc=0.5)
    shutil.rmtree(root / "runs", ignore_errors=True)  # first runs, not cached re-runs
    csv = base.load_spec().csv_path
    if rows != BASE_ROWS:
        from pipeline.bench.scaled_csv import write_scaled_csv

        say(f"flink: writing {rows:,} taxi rows")
        csv = write_scaled_csv(base.load_spec(), rows, root / "data" / "data.csv", seed=1)
    base = base.replace(csv=csv)
    report.update(rows=rows, epochs=epochs)
    say(f"flink: {rows:,} rows on the DirectRunner")
    report["direct"] = _measured(base.replace(output_root=root / "runs" / "direct"),
                                 log=root / "direct.log")
    say(f"flink: {rows:,} rows in the worker pool's SDK workers (portable runner, no Flink)")
    with local_worker_pool(root / "worker-pool.log") as pool:
        report["worker_pool"] = _measured(
            base.replace(output_root=root / "runs" / "pool"), "--beam-args=--runner=PortableRunner",
            "--beam-args=--job_endpoint=embed", "--beam-args=--environment_type=EXTERNAL",
            f"--beam-args=--environment_config={pool}", log=root / "pool.log")
    missing = flink_install.missing_job_server()
    if missing:
        report["flink"] = {"skipped": missing}
        say(f"flink: not run: {missing}")
        return
    say(f"flink: {rows:,} rows on a local Flink cluster")
    with _ChildrenPeak() as peak, local_flink(workdir=root / "cluster") as cluster:
        run = measure(pipeline_command(
            "run", *settings_args(base.replace(output_root=root / "runs" / "flink")),
            "--beam-runner", "flink", "--beam-master", cluster.master,
            "--beam-worker-pool", cluster.worker_pool), log=root / "flink.log")
        jobs = cluster.jobs()
    report["flink"] = {"wall_s": run.wall_seconds, "peak_rss_mb": peak.peak_mb,
                       "stages": run.stages, "flink_jobs": len(jobs),
                       "flink_jobs_finished": sum(j["state"] == "FINISHED" for j in jobs)}


def markdown(report: dict) -> str:
    """The section's table: each way's time and peak memory, and its ratio to the DirectRunner."""
    direct = report["direct"]
    lines = [f"## Beam on a local Flink cluster ({report['rows']:,} taxi rows; target: Flink "
             f"at most {TARGET_RATIO:g}x the DirectRunner)", "",
             "| where the Beam stages ran | wall s | x DirectRunner | peak memory, all "
             "processes (MB) |", "|---|---:|---:|---:|"]
    names = {"direct": "DirectRunner (in the pipeline's process)",
             "worker_pool": "worker pool's SDK workers (portable runner, no Flink)",
             "flink": "Flink 1.18 (JobManager, TaskManager, worker pool)"}
    for key, name in names.items():
        entry = report.get(key) or {}
        if "skipped" in entry:
            lines.append(f"| {name} | not run: {entry['skipped']} | | |")
        elif entry:
            lines.append(f"| {name} | {entry['wall_s']:.1f} | "
                         f"{entry['wall_s'] / direct['wall_s']:.2f} | "
                         f"{entry['peak_rss_mb']:,.0f} |")
    return "\n".join(lines) + "\n"
