"""The benchmark report as Markdown (outputs/bench/bench.md): the speed targets first, then the
scaling tables, and the start-up/per-row split."""
from __future__ import annotations

from pipeline.bench import targets_table


def _mb(value: float | None) -> str:
    return f"{value:,.0f} MB" if value else ""


def cost_split(report: dict) -> dict[str, tuple[float, float]]:
    """stage -> (fixed seconds, seconds per 100,000 rows): the line through the stage's time at
    the smallest and the largest size. Fixed is what a stage costs however little data it gets."""
    sizes = sorted(report["sizes"].values(), key=lambda e: e["rows"])
    if len(sizes) < 2:
        return {}
    small, large = sizes[0], sizes[-1]
    split = {}
    for stage, t_large in large["multi_processing"]["stages"].items():
        t_small = small["multi_processing"]["stages"].get(stage)
        if t_small is None or t_large < 0.5:
            continue
        per_row = (t_large - t_small) / (large["rows"] - small["rows"])
        split[stage] = (max(t_small - per_row * small["rows"], 0.0), per_row * 100_000)
    return split


def _cost_split(report: dict) -> list[str]:
    split = cost_split(report)
    if not split:
        return []
    lines = ["", "| stage | fixed s | s per 100k rows |", "|---|---:|---:|"]
    for stage, (fixed, per_100k) in split.items():
        lines.append(f"| {stage} | {fixed:.1f} | {per_100k:.1f} |")
    return lines


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python "
             f"{m['python']}.", ""]
    if report.get("targets"):
        lines.append(targets_table.markdown(report["targets"]))
    if report.get("sizes"):
        lines.append(_scaling(report))
    return "\n".join(lines).rstrip("\n") + "\n"


def _scaling(report: dict) -> str:
    nan = float("nan")
    lines = ["## Scaling", "",
             f"Multiples of the taxi sample, Beam multi_processing, Trainer: "
             f"{report.get('epochs', '?')} epochs at every size.", "",
             "| rows | stage | seconds | rows/s | peak RSS | in_memory s |",
             "|---:|---|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        multi, mem = entry["multi_processing"], entry["in_memory"]
        peaks = multi.get("stage_peak_rss_mb", {})
        for stage, seconds in multi["stages"].items():
            if seconds < 0.05:
                continue
            in_memory = mem["stages"].get(stage)
            lines.append(f"| {int(rows):,} | {stage} | {seconds:.1f} | {int(rows) / seconds:,.0f} "
                         f"| {_mb(peaks.get(stage))} | "
                         f"{'' if in_memory is None else f'{in_memory:.1f}'} |")
        lines.append(f"| {int(rows):,} | **whole run** | {multi['wall_seconds']:.1f} | | "
                     f"{_mb(multi['peak_rss_mb'])} | |")
    lines += _cost_split(report)
    lines += ["", "| rows | Trainer ex/s | plain Keras ex/s | Trainer / Keras | "
                  "StatisticsGen / pandas | Transform / pandas |",
              "|---:|---:|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        t = entry["training"]
        stages = entry["multi_processing"]["stages"]
        stats_ratio = entry["pandas_statistics_s"] / stages.get("StatisticsGen", nan)
        transform_ratio = entry["pandas_transform_s"] / stages.get("Transform", nan)
        lines.append(f"| {int(rows):,} | {t['trainer_examples_per_s']:,.0f} | "
                     f"{t['keras_examples_per_s']:,.0f} | {t['ratio']:.2f} | "
                     f"{stats_ratio:.3f} | {transform_ratio:.3f} |")
    lines += ["", "Ratios are speeds relative to the baseline: below 1 is slower than it. "
                  "in_memory s: the data stages re-run with Beam's in_memory mode (one process) "
                  "instead of multi_processing (one worker process per core).", "",
              f"Fixed overhead: a `--force` re-run (through TFX, every stage cached) takes "
              f"{report.get('cached_rerun_s', nan):.1f} s, a run on a 100-row sample "
              f"{report.get('rows100_run_s', nan):.1f} s.", ""]
    if report.get("serving"):
        lines += _serving(report["serving"])
    return "\n".join(lines) + "\n"


def _serving(serving: dict) -> list[str]:
    """One row per measurement (baselines.serving), its nested ones under it; then how many
    workers served the concurrent clients and the server's CPU time per request."""
    lines = ["| serving | p50 ms | p99 ms | requests/s | errors |", "|---|---:|---:|---:|---:|"]
    notes = []

    def row(name: str, figures: dict) -> None:
        errors = figures.get("errors")
        lines.append(f"| {name} | {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} | "
                     f"{figures['rps']:.1f} | {'' if errors is None else errors} |")

    for key, figures in serving.items():
        name = key.replace("_", " ")
        row(name, figures)
        concurrent = figures.get("concurrent")
        if concurrent:
            row(f"{name}, {concurrent.get('clients', '?')} clients", concurrent)
            if "server_cpu_ms" in concurrent:
                notes.append(f"{name}, {concurrent.get('clients', '?')} clients: "
                             f"{concurrent.get('workers', '?')} worker process(es), "
                             f"{concurrent['server_cpu_ms']:.1f} ms of server CPU per request")
        if figures.get("scoring_path"):
            row(f"{name}, scoring path", figures["scoring_path"])
    lines += ["", "http: `make serve`'s server on loopback, one kept-alive connection per client. "
                  "in process: the SavedModel's serving_raw on ready tensors; scoring path: what "
                  "the server runs per request besides HTTP (MLflow's parsing and schema "
                  "checks, the pyfunc, the JSON answer)."]
    if notes:
        lines += ["", "; ".join(notes) + "."]
    return lines
