"""`make bench`, init section: public tables the project has not seen, drafted by `init` with no
hand edit, then run; our eval figure against scikit-learn's HistGradientBoosting on the same
split.

Per table (pipeline/bench/public_tables.py): `python -m pipeline init` timed as a whole process,
`python -m pipeline run` on the drafted folder (default settings, seed 42), the Evaluator's AUC
(binary) or accuracy (multiclass) and whether the model was pushed, and
HistGradientBoostingClassifier (defaults) fitted on the train split the pipeline's ExampleGen
made and scored on its eval split (read back from its examples: quality.split_frames), with the
feature columns the drafted spec keeps. Target: ours >= TARGET_RATIO x HistGradientBoosting's.
Then `init` alone on the taxi sample resampled to 1.5M rows (scaled_csv.py): target at most
TARGET_INIT_S seconds as a whole process.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from pipeline.bench import public_tables
from pipeline.bench.process import measure, pipeline_command
from pipeline.config.settings import Settings

TARGET_RATIO = 0.98
SCALED_ROWS = 1_500_000  # init's speed target: at most TARGET_INIT_S as a whole process
TARGET_INIT_S = 60
SCALED_KEY = "taxi_scaled"
DEFAULT_TABLES = ("breast_cancer_raw", "wine", "digits", "penguins_raw")
# init's printout: "gates: min_auc 0.89, max_metric_drop 0.001 (the majority class AUC 0.500,
# a logistic regression 0.999, on the pipeline's eval split)".
_GATES = re.compile(r"gates: (\w+) ([0-9.]+), \w+ ([0-9.]+) \(.*? ([0-9.]+), .*? "
                    r"([0-9.]+|not fitted), on ")


def init_table(table: str, root: Path, say: Callable[[str], None]) -> dict:
    from pipeline.bench.quality import hist_gradient_boosting, split_frames
    from pipeline.bench.targets import model_quality, run_entry

    data, logs = root / "data", root / "logs"
    csv_path = public_tables.write_csv(table, root / "input" / f"{table}.csv")
    init = measure(pipeline_command("init", "--csv", str(csv_path), "--label",
                                    public_tables.LABELS[table], "--dataset", table,
                                    "--data-root", str(data), "--output-root",
                                    str(root / "drafts"), "--force"),
                   check=False, log=logs / f"{table}_init.log")
    out: dict = {"init_s": init.wall_seconds, "init_returncode": init.returncode}
    if init.returncode != 0:
        out["error"] = init.stdout.strip().splitlines()[-1][:300] if init.stdout else "init failed"
        return out
    found = _GATES.search(init.stdout)
    if found:
        out["gate"] = {"key": found[1], "minimum": float(found[2]), "max_drop": float(found[3]),
                       "majority": float(found[4]),
                       "linear": None if found[5] == "not fitted" else float(found[5])}
    settings = Settings(dataset=table, data_root=data, output_root=root / "runs")
    run = run_entry(settings, logs / f"{table}_run.log")
    out.update({"run_s": run["wall_s"], "returncode": run["returncode"],
                "pushed": "pushed to" in (logs / f"{table}_run.log").read_text()})
    if run["returncode"] != 0:
        out["error"] = run.get("error", "")[:300]
        return out
    out.update(model_quality(settings))
    spec = settings.load_spec()
    train, test = split_frames(settings, spec)
    out["split"] = {"train": len(train), "eval": len(test)}
    out["hist_gb"] = hist_gradient_boosting(train, test, spec, 42)
    metric = "auc" if spec.num_classes == 2 else "accuracy"
    out["metric"] = metric
    if metric in out and metric in out["hist_gb"]:
        out["ratio"] = out[metric] / out["hist_gb"][metric]
    say(f"init {table}: {metric} {out.get(metric, float('nan')):.4f} vs HGB "
        f"{out['hist_gb'].get(metric, float('nan')):.4f}, init {out['init_s']:.1f} s")
    return out


def init_scaled_taxi(root: Path, rows: int = SCALED_ROWS) -> dict:
    """`init` on the taxi sample resampled to `rows` rows (scaled_csv.py), as a whole process;
    the CSV is deleted afterwards."""
    from pipeline.bench.scaled_csv import write_scaled_csv

    csv_path = write_scaled_csv(Settings(dataset="taxi").load_spec(), rows,
                                root / "scaled" / "data.csv")
    try:
        run = measure(pipeline_command("init", "--csv", str(csv_path), "--label", "big_tipper",
                                       "--dataset", f"taxi_{rows}", "--data-root",
                                       str(root / "scaled_data"), "--output-root",
                                       str(root / "drafts"), "--force"),
                      check=False, log=root / "logs" / f"taxi_{rows}_init.log")
    finally:
        shutil.rmtree(root / "scaled", ignore_errors=True)
        shutil.rmtree(root / "scaled_data", ignore_errors=True)
    return {"rows": rows, "init_s": run.wall_seconds, "returncode": run.returncode,
            "peak_rss_mb": run.peak_rss_mb}


def run_init_tables(root: Path, say: Callable[[str], None], results: dict | None = None,
                    tables: tuple[str, ...] = DEFAULT_TABLES, scaled_rows: int = SCALED_ROWS
                    ) -> dict:
    root = Path(root).resolve()
    shutil.rmtree(root, ignore_errors=True)
    results = {} if results is None else results
    for table in tables:
        say(f"init: {table}")
        try:
            results[table] = init_table(table, root, say)
        except Exception as e:  # noqa: BLE001 - one table must not lose the others
            results[table] = {"error": f"{type(e).__name__}: {e}"[-1000:]}
    if scaled_rows:
        say(f"init: taxi resampled to {scaled_rows:,} rows")
        try:
            results[SCALED_KEY] = init_scaled_taxi(root, scaled_rows)
        except Exception as e:  # noqa: BLE001
            results[SCALED_KEY] = {"error": f"{type(e).__name__}: {e}"[-1000:]}
    return results


def table(results: dict) -> str:
    lines = ["## Your own CSV: public tables drafted by `make init`, no hand edit", "",
             "| table | rows (train / eval) | init s | run s | ours | HistGradientBoosting | "
             f"ours / HGB (target >= {TARGET_RATIO}) | gate (majority, linear) | pushed |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    scaled = results.get(SCALED_KEY)
    for name, e in results.items():
        if name == SCALED_KEY:
            continue
        if "metric" not in e:
            lines.append(f"| {name} | | {e.get('init_s', 0):.1f} | | | | | | failed: "
                         f"{e.get('error', '')[:100]} |")
            continue
        metric, shown = e["metric"], "AUC" if e["metric"] == "auc" else "accuracy"
        ratio = e.get("ratio")
        met = "" if ratio is None else (" met" if ratio >= TARGET_RATIO else " NOT met")
        g = e.get("gate") or {}
        linear = g.get("linear")
        gate = (f"{g['key']} {g['minimum']:.2f} ({g['majority']:.3f}, "
                f"{'-' if linear is None else f'{linear:.3f}'})" if g else "-")
        lines.append(
            f"| {name} | {e['split']['train']} / {e['split']['eval']} | {e['init_s']:.1f} | "
            f"{e['run_s']:.0f} | {shown} {e.get(metric, float('nan')):.4f} | "
            f"{e['hist_gb'].get(metric, float('nan')):.4f} | "
            f"{'-' if ratio is None else f'{ratio:.3f}'}{met} | {gate} | "
            f"{'yes' if e.get('pushed') else 'no'} |")
    if scaled and "init_s" in scaled:
        met = "met" if scaled["returncode"] == 0 and scaled["init_s"] <= TARGET_INIT_S \
            else "NOT met"
        lines += ["", f"`init` on the taxi CSV resampled to {scaled['rows']:,} rows: "
                      f"{scaled['init_s']:.1f} s as a whole process, peak "
                      f"{scaled['peak_rss_mb']:,.0f} MB (target <= {TARGET_INIT_S} s: {met})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m pipeline.bench.init_tables [TABLE ...]: this section only
    import json
    import sys

    root = Path("outputs/bench/init")
    chosen = tuple(sys.argv[1:]) or DEFAULT_TABLES
    found = run_init_tables(root, lambda t: print(t, flush=True), tables=chosen)
    (root / "init.json").write_text(json.dumps(found, indent=2, default=str))
    print(table(found))
