"""The benchmark report as Markdown (outputs/bench/bench.md): the speed targets first, then the
scaling tables, and the start-up/per-row split."""
from __future__ import annotations

from pipeline.bench import targets_table
from pipeline.config import stage_names


def _mb(value: float | None) -> str:
    return f"{value:,.0f} MB" if value else ""


def pipeline_run(entry: dict) -> dict:
    """A size's pipeline run in the Beam mode the default chose (reports before that ran
    multi_processing under that key)."""
    return entry.get("run") or entry["multi_processing"]


def per_million_rows(report: dict) -> list[str]:
    """Each stage's seconds per 1M rows at every size (a flat row means linear cost), the Beam
    mode the default chose and the peak memory at each size."""
    sizes = sorted(report["sizes"].values(), key=lambda e: e["rows"])
    if not sizes:
        return []
    stages = list(dict.fromkeys(s for e in sizes for s in pipeline_run(e)["stages"]))
    lines = ["| stage | " + " | ".join(f"s at {e['rows']:,} | s per 1M rows" for e in sizes)
             + " |", "|---|" + "---:|---:|" * len(sizes)]

    def row(name: str, seconds: list[float | None]) -> str:
        cells = []
        for entry, value in zip(sizes, seconds):
            cells += ["", ""] if value is None else [
                f"{value:.1f}", f"{value / entry['rows'] * 1e6:.1f}"]
        return f"| {name} | " + " | ".join(cells) + " |"

    for stage in stages:
        seconds = [pipeline_run(e)["stages"].get(stage) for e in sizes]
        if all(v is None or v < 0.5 for v in seconds):  # too short to say anything
            continue
        lines.append(row(stage, seconds))
    lines.append(row("**whole run**", [pipeline_run(e)["wall_seconds"] for e in sizes]))
    lines.append("| Beam mode (auto) | " + " | ".join(
        f"{e.get('beam_mode', '?')} | " for e in sizes) + " |")
    lines.append("| peak RSS | " + " | ".join(
        f"{_mb(pipeline_run(e)['peak_rss_mb'])} | " for e in sizes) + " |")
    if len(sizes) > 1:
        small, large = pipeline_run(sizes[0])["peak_rss_mb"], pipeline_run(sizes[-1])["peak_rss_mb"]
        lines += ["", f"Peak RSS at {sizes[-1]['rows']:,} rows is {large / small:.2f}x the peak "
                      f"at {sizes[0]['rows']:,} (the pipeline process and its Beam workers)."]
    return lines


def cost_split(report: dict) -> dict[str, tuple[float, float]]:
    """stage -> (fixed seconds, seconds per 100,000 rows): the line through the stage's time at
    the smallest and the largest size. Fixed is what a stage costs however little data it gets."""
    sizes = sorted(report["sizes"].values(), key=lambda e: e["rows"])
    if len(sizes) < 2:
        return {}
    small, large = sizes[0], sizes[-1]
    split = {}
    for stage, t_large in pipeline_run(large)["stages"].items():
        t_small = pipeline_run(small)["stages"].get(stage)
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
    if report.get("tracking_cost"):
        from pipeline.bench.tracking_cost import lines as tracking_lines

        lines += tracking_lines(report["tracking_cost"])
    if report.get("init"):
        from pipeline.bench.init_tables import table as init_table

        lines.append(init_table(report["init"]))
    if report.get("sizes"):
        lines.append(_scaling(report))
    return "\n".join(lines).rstrip("\n") + "\n"


def _scaling(report: dict) -> str:
    nan = float("nan")
    lines = ["## Scaling", "",
             f"Multiples of the taxi sample, Beam mode as the default (`--beam-mode auto`) "
             f"chose it, Trainer: {report.get('epochs', '?')} epochs at every size.", "",
             *per_million_rows(report), "",
             "| rows | stage | seconds | rows/s | peak RSS | other mode s |",
             "|---:|---|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        run, other = pipeline_run(entry), entry.get("other_mode") or entry.get("in_memory")
        peaks = run.get("stage_peak_rss_mb", {})
        for stage, seconds in run["stages"].items():
            if seconds < 0.05:
                continue
            again = other["stages"].get(stage) if other else None
            lines.append(f"| {int(rows):,} | {stage} | {seconds:.1f} | {int(rows) / seconds:,.0f} "
                         f"| {_mb(peaks.get(stage))} | "
                         f"{'' if again is None else f'{again:.1f}'} |")
        lines.append(f"| {int(rows):,} | **whole run** | {run['wall_seconds']:.1f} | | "
                     f"{_mb(run['peak_rss_mb'])} | |")
    lines += _cost_split(report)
    lines += ["", "| rows | Trainer ex/s | plain Keras ex/s | Trainer / Keras | "
                  "Trainer's input / Keras, interleaved | "
                  "StatisticsGen / pandas | Transform / pandas |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        t = entry["training"]
        stages = pipeline_run(entry)["stages"]
        stats_ratio = entry["pandas_statistics_s"] / stages.get(stage_names.STATISTICS_GEN, nan)
        transform_ratio = entry["pandas_transform_s"] / stages.get(stage_names.TRANSFORM, nan)
        lines.append(f"| {int(rows):,} | {t['trainer_examples_per_s']:,.0f} | "
                     f"{t['keras_examples_per_s']:,.0f} | {t['ratio']:.2f} | "
                     f"{t.get('input_ratio', nan):.2f} | "
                     f"{stats_ratio:.3f} | {transform_ratio:.3f} |")
    others = ", ".join(f"{(e.get('other_mode') or {}).get('mode', 'in_memory')} at "
                       f"{int(rows):,}" for rows, e in report["sizes"].items()
                       if e.get("other_mode") or e.get("in_memory"))
    lines += ["", "Ratios are speeds relative to the baseline: below 1 is slower than it. "
                  "Trainer / Keras: the Trainer's fit in the pipeline against the median of the "
                  "plain-Keras fits on arrays run after it; interleaved: the Trainer's input "
                  "path (components/train/trainer_module.dataset) fed to the same model in the bench's "
                  "process, alternating with those fits (arrays, input, input, arrays, thrice "
                  "for fits of up to 1M examples; the best of each), so both see the machine "
                  "at the same minutes. "
                  "other mode s: the data stages re-run with the Beam mode the default did not "
                  f"choose ({others or 'not measured'}).", "",
              f"Fixed overhead: a `--force` re-run (through TFX, every stage cached) takes "
              f"{report.get('cached_rerun_s', nan):.1f} s, a run on a "
              f"{report.get('small_rows', 100)}-row sample "
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
