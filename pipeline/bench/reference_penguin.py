"""TFX's own reference pipeline on our penguins data: the bench's yardstick for a first run.

`create_pipeline` from `tfx/examples/penguin/penguin_pipeline_local.py` (the installed tfx
package) with its Keras module file `penguin_utils_keras.py`, run under `LocalDagRunner` on the
Beam DirectRunner in multi_processing mode with one worker per core, as the example sets it;
Tuner, BulkInferrer, example diff and range configs off, everything else as the example's
`__main__` passes it (accuracy threshold 0.6, Transform input cache on, schema from SchemaGen).

    python -m pipeline.bench.reference_penguin convert --penguins-csv data/penguins/data.csv \
        --root R                                                    # the example's CSV
    python -m pipeline.bench.reference_penguin run --root R        # what the bench times
    python -m pipeline.bench.reference_penguin summarize --root R  # JSON: accuracy, stages

The example's module reads `species, culmen_length_mm, culmen_depth_mm, flipper_length_mm,
body_mass_g` with species as 0/1/2 and no gaps, so `convert` writes our penguins CSV that way
(standard library only: the bench's tests call it without TensorFlow).

Nothing is downloaded: the example builds a wheel of its module file and a package of TFX
itself with setuptools, locally, and installs the wheel with pip from that file; `run` keeps pip
off the package index (PIP_NO_INDEX) and TFX's temp folders under the root (TMPDIR).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from components.ingest import csv_format

REFERENCE_COLUMNS = ("species", "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm",
                     "body_mass_g")
# Our column -> the example's column.
RENAMES = {"bill_length_mm": "culmen_length_mm", "bill_depth_mm": "culmen_depth_mm"}
PIPELINE_NAME = "penguin_local_keras"
ACCURACY_THRESHOLD = 0.6  # what the example's __main__ passes
EXAMPLE_DIR = ("tfx", "examples", "penguin")


def to_reference_csv(source: Path, target: Path) -> dict[str, int]:
    """Our penguins CSV as the example's module reads it: bill_* renamed culmen_*, species names
    mapped to 0/1/2 in sorted order, rows with an empty cell among the five columns dropped,
    only those five columns kept. Returns {"rows": written, "dropped": rows left out}."""
    with csv_format.inspect(source).open_text() as f:
        reader = csv.DictReader(f)
        rows = [{RENAMES.get(k, k): v for k, v in row.items()} for row in reader]
    missing = [c for c in REFERENCE_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{source}: no column(s) {missing} (after renaming {RENAMES})")
    kept = [r for r in rows if all((r[c] or "").strip() for c in REFERENCE_COLUMNS)]
    species = {name: i for i, name in enumerate(sorted({r["species"] for r in kept}))}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(REFERENCE_COLUMNS)
        for r in kept:
            writer.writerow([species[r["species"]], *(r[c] for c in REFERENCE_COLUMNS[1:])])
    return {"rows": len(kept), "dropped": len(rows) - len(kept), "classes": len(species)}


def example_dir() -> Path:
    """tfx/examples/penguin in the installed tfx package (found without importing tfx)."""
    import importlib.util

    spec = importlib.util.find_spec("tfx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tfx is not installed")
    return Path(list(spec.submodule_search_locations)[0], *EXAMPLE_DIR[1:])


class Paths:
    def __init__(self, root: Path):
        root = Path(root).resolve()
        self.root = root
        self.data_root = root / "data"  # the example reads <data_root>/labelled/*
        self.csv = self.data_root / "labelled" / "penguins.csv"
        self.pipeline_root = root / "pipeline_root"
        self.metadata = root / "metadata.db"
        self.serving = root / "serving_model"
        self.tmp = root / "tmp"


def beam_args(workers: int) -> list[str]:
    # The example's DirectRunner args ('--direct_num_workers=0' means one per core; the bench
    # names the core count).
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def run(root: Path, workers: int, transform_cache: bool = True) -> None:
    """Build the example's pipeline and run it with LocalDagRunner (the timed part)."""
    paths = Paths(root)
    if not paths.csv.exists():
        raise SystemExit(f"no {paths.csv}: run `convert` first")
    # tf.Transform and TFMA need Keras 2 with TF 2.16, as in the pipeline's own CLI.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tfx import v1 as tfx
    from tfx.examples.penguin import penguin_pipeline_local as example

    pipeline = example.create_pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(paths.pipeline_root),
        data_root=str(paths.data_root),
        module_file=str(example_dir() / "penguin_utils_keras.py"),
        accuracy_threshold=ACCURACY_THRESHOLD,
        serving_model_dir=str(paths.serving),
        metadata_path=str(paths.metadata),
        user_provided_schema_path=None,
        enable_tuning=False,
        enable_bulk_inferrer=False,
        enable_example_diff=False,
        examplegen_input_config=None,
        examplegen_range_config_date=None,
        resolver_range_config=None,
        beam_pipeline_args=beam_args(workers),
        enable_transform_input_cache=transform_cache,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)


def run_environment(root: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the bench runs `run` in: nothing fetched, temp files under the root."""
    paths = Paths(root)
    paths.tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if base is None else base)
    env.update(TMPDIR=str(paths.tmp), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="1", PYTHONWARNINGS="ignore")
    return env


def summarize(root: Path) -> dict:
    """What the run produced: eval accuracy, blessed, pushed, seconds per component."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from pipeline.console.summary_figures import overall_metrics
    from pipeline.mlmd import queries

    paths = Paths(root)
    result: dict = {"stages": {}, "states": {}}
    with queries.open_store_context(paths.metadata) as store:
        run_id = queries.run_ids(store, PIPELINE_NAME)[-1]
        for node in queries.run_executions(store, PIPELINE_NAME, run_id):
            e = node.execution
            result["stages"][node.node_id] = round(
                (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000, 2)
            result["states"][node.node_id] = node.state
            if node.node_id == "Evaluator":
                metrics = overall_metrics(node.outputs["evaluation"][0].uri)
                result["accuracy"] = metrics.get("sparse_categorical_accuracy")
                blessing = node.outputs["blessing"][0].custom_properties.get("blessed")
                result["blessed"] = bool(blessing and blessing.int_value)
    result["pushed"] = paths.serving.exists() and any(paths.serving.iterdir())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.reference_penguin",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="write the example's CSV from ours")
    convert.add_argument("--penguins-csv", type=Path, required=True)
    convert.add_argument("--root", type=Path, required=True)
    run_cmd = commands.add_parser("run", help="run the example's pipeline (LocalDagRunner)")
    run_cmd.add_argument("--root", type=Path, required=True)
    run_cmd.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="Beam DirectRunner workers (default: one per core)")
    run_cmd.add_argument("--no-transform-cache", action="store_true",
                         help="Transform without its input cache (the example turns it on)")
    report = commands.add_parser("summarize", help="print the run's results as JSON")
    report.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "convert":
        print(json.dumps(to_reference_csv(args.penguins_csv, Paths(args.root).csv)))
    elif args.command == "run":
        run(args.root, args.workers, transform_cache=not args.no_transform_cache)
    else:
        print(json.dumps(summarize(args.root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
