"""`python -m pipeline init --csv PATH --label COLUMN [--dataset NAME] [--force]` (`make init`):
a dataset folder drafted from a CSV, ready for `make pipeline DATASET=NAME`.

data/<name>/ gets:
- the CSV, copied (data.csv, or data.csv.gz for a gzip file): the folder is the dataset, as
  taxi's and penguins' are, and a later edit or move of the original cannot change what the
  committed spec, schema and suite describe;
- spec.yaml, drafted by pipeline/dataset_init (every line commented with why);
- schema/schema.pbtxt, drafted by SchemaGen exactly as `make schema` does (the same pipeline
  run), and expectations.json, drafted exactly as `make expectations` does (suite_draft), each
  with a header saying from how many rows and when. A file larger than the sample is drafted
  from the sample (a uniform random one, written to a temporary CSV): SchemaGen's string
  domains then accept 1% of values outside them and its boolean (0/1) whole-number columns are
  left undeclared (a rare value may be missing from the sample),
  and the suite's row-count bounds are the whole file's.

Refused in one line, exit 2, nothing written: a CSV the pipeline cannot read, a label not in
the header, a label with one value or empty cells, a label the pipeline cannot train on (too
many text classes, regression while unsupported), an existing dataset folder without --force.
The rare-class fix: a class with too few rows to be sure to appear in both splits is not
required in each split by the drafted suite (suite_draft requires every class in every split);
a class whose rows all fall in one split (a class of one row always does) is warned about.
Likewise a regression label's mean and spread are judged on the whole file, not per split,
when a split holds too few rows for them to stay near the file's.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pipeline.config import settings as settings_lib

HELP = ("draft a dataset from a CSV: spec.yaml (types, roles, task, leakage, slicing, gates), "
        "schema and expectation suite into <data-root>/<name>/")
# A class with at least this many rows is in both splits but with probability 0.7**30 < 1e-4.
SPLIT_CLASS_ROWS = 30
# A split of fewer rows has a regression label's mean and standard deviation judged with the
# whole file's, not on its own: suite_draft's per-split bounds (the mean within one drafted
# standard deviation, the spread within a factor 4) fail a split of a few rows by chance
# (statsmodels' longley, 16 rows: its 2 eval rows' spread, 822, was under the bound 877, and the
# run stopped on its own data). On 30 rows of a normal label either fails by chance less than
# once in a million.
SPLIT_MOMENT_ROWS = 30
SAMPLED_DOMAIN_MASS = 0.99
_GENERIC_NAMES = {"data", "dataset", "train", "input", "table", "export"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class InitRefused(ValueError):
    """init will not draft this dataset; the message says why in one line."""


def add_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("init", help=HELP, description=HELP)
    parser.add_argument("--csv", type=Path, required=True, help="the CSV file (or .csv.gz)")
    parser.add_argument("--label", required=True, help="the column to predict")
    parser.add_argument("--dataset", default="",
                        help="dataset name: the folder under --data-root (default: the CSV's "
                             "file name, lower case, letters, digits and _; its folder's "
                             "name for data.csv, train.csv)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing dataset folder of that name")
    defaults = settings_lib.Settings()
    parser.add_argument("--data-root", type=Path, default=defaults.data_root,
                        help=f"folder of dataset folders (default: {defaults.data_root})")
    parser.add_argument("--output-root", type=Path, default=defaults.output_root,
                        help="folder for the schema draft's pipeline run (default: "
                             f"{defaults.output_root})")
    parser.add_argument("--train-ratio", type=float, default=defaults.train_ratio,
                        help="the split the gates are measured on; the pipeline's "
                             f"--train-ratio (default: {defaults.train_ratio})")


def dataset_name(csv_path: Path) -> str:
    """The CSV's file name without .csv / .gz, lower case, [a-z0-9_]; a generic file name
    (data.csv, train.csv) gives its folder's name instead (data/taxi/data.csv -> taxi)."""
    stem = csv_path.name
    for suffix in (".gz", ".csv", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[:-len(suffix)]
    if stem.lower() in _GENERIC_NAMES and csv_path.resolve().parent.name:
        stem = csv_path.resolve().parent.name
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return name or "dataset"


def main(args: argparse.Namespace) -> int:
    try:
        run(args.csv, args.label, args.dataset, force=args.force, data_root=args.data_root,
            output_root=args.output_root, train_ratio=args.train_ratio)
    except InitRefused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the schema run failed: one line, nothing left
        print(f"error: init failed, nothing written: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def run(csv_path: Path, label: str, name: str = "", *, force: bool = False,
        data_root: Path = settings_lib.Settings().data_root,
        output_root: Path = settings_lib.Settings().output_root, train_ratio: float = 0.7,
        out=sys.stdout) -> Path:
    """Draft the dataset folder; returns it. InitRefused before anything is written."""
    from components.ingest.csv_format import CsvFormatError
    from pipeline.config.dataset_spec import SpecError
    from pipeline.dataset_init import draft as drafting
    from pipeline.dataset_init.task import LabelRefused

    started = time.perf_counter()
    csv_path = Path(csv_path)
    name = name or dataset_name(csv_path)
    if not _NAME.fullmatch(name):
        raise InitRefused(f"dataset name {name!r}: use letters, digits, '_', '.' and '-'")
    folder = Path(data_root) / name
    if folder.exists() and not force:
        raise InitRefused(f"{folder} already exists; pass --force (make init ... FORCE=1) to "
                          "replace it, or choose another --dataset name")
    try:
        settings_lib.check_train_ratio(train_ratio)
        draft = drafting.infer(csv_path, label, name, train_ratio)
    except (LabelRefused, CsvFormatError, ValueError) as e:
        raise InitRefused(str(e)) from None
    inferred_s = time.perf_counter() - started
    # A pipeline run (not init's own schema draft) left ML Metadata there before.
    earlier = (Path(output_root) / name / "last_success.json").exists() or \
        (Path(output_root) / name / "mlflow").exists()
    Path(data_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".init-{name}-", dir=data_root))
    try:
        written = _write_folder(draft, csv_path, staging / name, folder, Path(output_root),
                                train_ratio, out)
        if folder.exists():
            shutil.rmtree(folder)
        written.rename(folder)
    except SpecError as e:  # e.g. two columns whose TensorFlow names clash
        raise InitRefused(str(e)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _report(draft, folder, out, inferred_s, time.perf_counter() - started,
            Path(output_root) / name if earlier else None,
            _run_flags(data_root, output_root, train_ratio))
    return folder


def _run_flags(data_root: Path, output_root: Path, train_ratio: float) -> list[str]:
    """The `pipeline run` flags that repeat init's own where they are not the defaults: the
    folders it wrote to (absolute, so the command works from anywhere) and the split the gates
    were measured on."""
    defaults = settings_lib.Settings()
    flags = []
    for flag, given, default in (("--data-root", data_root, defaults.data_root),
                                 ("--output-root", output_root, defaults.output_root)):
        if Path(given).resolve() != Path(default).resolve():
            flags += [flag, str(Path(given).resolve())]
    if round(train_ratio * 100) != round(defaults.train_ratio * 100):
        flags += ["--train-ratio", f"{train_ratio:g}"]
    return flags


def _run_commands(name: str, flags: list[str], extra: str = "") -> tuple[str, str]:
    """`make pipeline` and `python -m pipeline run` for the drafted dataset, ready to paste."""
    args = " ".join(shlex.quote(a) for a in [*extra.split(), *flags])
    make = f"make pipeline DATASET={name}" + (f" ARGS={shlex.quote(args)}" if args else "")
    return make, f"python -m pipeline run --dataset {name}" + (f" {args}" if args else "")


def _write_folder(draft, source: Path, folder: Path, final: Path, output_root: Path,
                  train_ratio: float, out) -> Path:
    """Everything written into folder (a staging copy that becomes `final`)."""
    from pipeline.config.dataset_spec import load_spec
    from pipeline.dataset_init import spec_writer

    folder.mkdir(parents=True)
    csv_name = "data.csv.gz" if source.name.lower().endswith(".gz") else "data.csv"
    shutil.copyfile(source, folder / csv_name)
    drafted_at = time.time()
    (folder / "spec.yaml").write_text(
        spec_writer.render(draft, csv_name, str(source), drafted_at), encoding="utf-8")
    spec = load_spec(folder / "spec.yaml")  # a draft the loader refuses is a bug here
    sample_csv = None
    if draft.table.sampled:
        sample_csv = folder.parent / "sample.csv"
        _write_sample(draft.table, sample_csv)
    rows = draft.table.sample.num_rows if sample_csv else draft.table.rows
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(drafted_at))
    what = (f"a random sample of {rows:,} of the {draft.table.rows:,} rows" if sample_csv
            else f"all {rows:,} rows")
    _draft_schema(spec, folder, output_root, sample_csv, train_ratio, stamp, what, out)
    _draft_suite(spec, folder, sample_csv, draft, stamp, what, final / csv_name)
    return folder


def _write_sample(table, path: Path) -> None:
    columns = [table.sample.column(i).to_pylist() for i in range(len(table.header))]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(table.header)
        writer.writerows(zip(*columns))


def _draft_schema(spec, folder: Path, output_root: Path, sample_csv: Path | None,
                  train_ratio: float, stamp: str, what: str, out) -> None:
    """`make schema`'s own run (local_dag.draft_schema), its draft copied into the folder."""
    import io

    from pipeline.runners import local_dag, run_lock

    settings = settings_lib.Settings(dataset=spec.name, data_root=folder.parent,
                                     output_root=output_root, csv=sample_csv,
                                     train_ratio=train_ratio)
    log = io.StringIO()
    run_id = run_lock.new_run_id()
    # One run per output folder at a time, as `make schema` holds it.
    with run_lock.holding_output_folder(settings, "`python -m pipeline init`", run_id, out=log):
        draft = local_dag.draft_schema(settings, out=log, run_id=run_id)
    text = draft.read_text()
    if sample_csv is not None:
        text = _widen_domains(text)
    target = folder / "schema" / "schema.pbtxt"
    target.parent.mkdir(parents=True, exist_ok=True)
    note = ("\n# String domains accept 1% of values outside them (distribution_constraints),"
            "\n# and no whole-number column is declared boolean (0/1): a rare value may be"
            "\n# missing from a sample." if sample_csv else "")
    target.write_text(f"# Drafted by `make init` on {stamp} with SchemaGen, as `make schema` "
                      f"does, from {what}.{note}\n# Review it before committing it.\n" + text)


def _widen_domains(text: str) -> str:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(text, schema_pb2.Schema())
    for feature in schema.feature:
        # SchemaGen declares a whole-number column boolean when it saw only 0 and 1; in a sample
        # that says nothing of the file: modeldata's grants_other (8,190 rows, a 5,000-row
        # sample) had 1,134 such columns and 9 held a 2 elsewhere, which stopped its first run
        # at the AnomaliesGate ("Non-boolean values").
        if feature.WhichOneof("domain_info") == "bool_domain":
            feature.ClearField("bool_domain")
        if feature.HasField("domain") or feature.HasField("string_domain"):
            constraints = feature.distribution_constraints
            if not constraints.HasField("min_domain_mass") or \
                    constraints.min_domain_mass > SAMPLED_DOMAIN_MASS:
                constraints.min_domain_mass = SAMPLED_DOMAIN_MASS
    return text_format.MessageToString(schema)


def _draft_suite(spec, folder: Path, sample_csv: Path | None, draft, stamp: str,
                 what: str, final_csv: Path) -> None:
    """`make expectations`' own draft (suite_draft.draft_suite on example_frames)."""
    from components.contract import example_frames, suite_draft, suite_loading

    frames = example_frames.csv_frames(sample_csv or spec.csv_path, spec)
    suite = suite_draft.draft_suite(frames, spec, source=str(final_csv))
    suite["meta"]["drafted_by"] = f"make init on {stamp}, from {what}"
    if sample_csv is not None:
        _whole_file_rows(suite, draft.table.rows)
    _rare_classes_not_required_per_split(suite, spec, draft)
    _label_moments_of_small_splits_on_the_whole_file(suite, spec, draft)
    target = folder / suite_loading.SUITE_FILE
    suite_loading.parse_suite(suite, spec, str(target))
    target.write_text(json.dumps(suite, indent=2) + "\n")


def _whole_file_rows(suite: dict, rows: int) -> None:
    """The row-count bounds suite_draft sets, for the whole file rather than the sample."""
    from components.contract.suite_draft import ROW_COUNT_FACTOR

    for e in suite["expectations"]:
        if e["type"] == "expect_table_row_count_to_be_between":
            e["kwargs"]["min_value"] = -(-rows // ROW_COUNT_FACTOR)
            e["kwargs"]["max_value"] = rows * ROW_COUNT_FACTOR
            e["meta"]["observed"] = f"{rows} rows"


def _rare_classes_not_required_per_split(suite: dict, spec, draft) -> None:
    """suite_draft requires every class in every split (train and eval); a class of a few rows
    may have none in one of them, and the run would stop on its own data. Such classes stay
    allowed values but are not required per split."""
    counts = draft.task.counts
    rare = {c for c, n in counts.items() if n < SPLIT_CLASS_ROWS}
    if not rare:
        return
    typed = {str(c): c for c in _suite_classes(suite, spec)}
    rare_values = [typed[c] for c in rare if c in typed]
    kept = []
    for e in suite["expectations"]:
        per_split = e["meta"].get("per_split")
        if per_split and e["kwargs"].get("column") == spec.label:
            values = e["kwargs"].get("value_set", [])
            if e["type"] == "expect_column_values_to_be_in_set" and \
                    any(v in rare_values for v in values):
                continue  # the share floor of a rare class
            if e["type"] == "expect_column_distinct_values_to_contain_set":
                e["kwargs"]["value_set"] = [v for v in values if v not in rare_values]
                e["meta"]["rare_classes"] = (
                    f"not required in each split (fewer than {SPLIT_CLASS_ROWS} rows): "
                    + ", ".join(map(str, sorted(rare_values, key=str))))
                if not e["kwargs"]["value_set"]:
                    continue
        kept.append(e)
    suite["expectations"] = kept


def _label_moments_of_small_splits_on_the_whole_file(suite: dict, spec, draft) -> None:
    """A regression label's per-split mean and standard deviation checks, judged on the whole
    file instead when a split holds fewer than SPLIT_MOMENT_ROWS rows (they still stop a label
    whose unit changed)."""
    rows = min(draft.split_rows)
    if not spec.is_regression or rows >= SPLIT_MOMENT_ROWS:
        return
    for e in suite["expectations"]:
        if e["meta"].get("per_split") and e["kwargs"].get("column") == spec.label and \
                e["type"] in ("expect_column_mean_to_be_between",
                              "expect_column_stdev_to_be_between"):
            e["meta"]["per_split"] = False
            e["meta"]["small_split"] = (
                f"judged on the whole file, not per split: a split holds {rows:,} rows (fewer "
                f"than {SPLIT_MOMENT_ROWS}), whose mean and spread stray from the file's by "
                "chance")


def _suite_classes(suite: dict, spec) -> list:
    for e in suite["expectations"]:
        if e["type"] == "expect_column_values_to_be_in_set" and \
                e["kwargs"].get("column") == spec.label and "mostly" not in e["kwargs"]:
            return list(e["kwargs"]["value_set"])
    return []


# A wide table's summary names this many columns of one kind, then counts the rest (every
# column is in spec.yaml, each with its reason): a 1,503-column table printed 813 lines of
# "one value ('0') on every row" before its features.
NAMES_SHOWN = 10
GROUPED_FROM = 4  # columns ignored for the same reason, listed on one line


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else \
        f"{shown} and {len(names) - NAMES_SHOWN} more (spec.yaml lists them all)"


def _ignored_lines(ignored) -> list[str]:
    """One line per ignored column, or one per reason that many share. A flagged column that is
    also ignored was explained just above: named, not repeated."""
    by_reason: dict[str, list[str]] = {}
    for c in ignored:
        by_reason.setdefault("flagged above" if c.flagged else c.reason, []).append(c.name)
    lines = []
    for reason, names in by_reason.items():
        if len(names) >= GROUPED_FROM:
            lines.append(f"    {len(names)} columns, {reason}: {_names(names)}")
        else:
            lines += [f"    {name}: {reason}" for name in names]
    return lines


# Fewer eval rows than this, and init says its gates are coarse (a 60-row table was gated on
# 17 eval rows without a word: its model, below init's own baseline, was blessed).
FEW_EVAL_ROWS = 100


def _report(draft, folder: Path, out, inferred_s: float, total_s: float,
            earlier_runs: Path | None = None, run_flags: list[str] | None = None) -> None:
    from pipeline.config import dataset_spec as ds
    from pipeline.dataset_init import draft as drafting
    from pipeline.dataset_init import gate_proposal

    task = draft.task
    lines = [f"Drafted {folder} from {draft.table.path} ({draft.table.rows:,} rows; "
             f"inference {inferred_s:.1f} s, all {total_s:.1f} s).", "Review before running:"]
    classes = ", ".join(f"{c} ({n:,})" for c, n in task.counts.items())
    lines.append(f"  task: {task.task} ({task.reason})" +
                 (f"; classes in order: {classes}" if classes else ""))
    lines += [f"  warning: {line}" for line in drafting.one_split_warnings(draft)]
    if draft.missing_values:
        lines.append(f"  missing_values: {', '.join(draft.missing_values)} "
                     f"({draft.missing_reason})")
    flagged = [f"    {c.name}: {c.reason}" for c in draft.flagged]
    computed = draft.gates.computed_label_note() if draft.gates is not None else ""
    if computed:
        flagged.insert(0, f"    {draft.label} (the label): {computed}")
    lines.append(f"  flagged for review ({len(flagged)}):" if flagged else
                 "  flagged for review: none")
    lines += flagged
    if draft.gates is not None and draft.gates.left_out:
        lines.append("    if a run pushed a champion trained with one before you ignore it "
                     "(docs/init.md, Leakage), run once: "
                     + _run_commands(draft.name, run_flags or [], draft.gates.override)[0])
    lines.append(f"  ignored ({len(draft.ignored)}):" if draft.ignored else "  ignored: none")
    lines += _ignored_lines(draft.ignored)
    features = [c for c in draft.columns if c.role == ds.FEATURE]
    by_type: dict[str, list[str]] = {}
    for c in features:
        by_type.setdefault(c.type, []).append(c.name)
    lines.append(f"  features ({len(features)}): " + "; ".join(
        f"{t} {_names(names)}" for t, names in by_type.items()))
    lines.append(f"  slice_by: {draft.slice_by or 'none'} ({draft.slice_reason})")
    if draft.gates is not None:
        g = draft.gates
        linear = f"{g.linear:.3f}" if g.linear is not None else "not fitted"
        lines.append(f"  gates: {g.key} {gate_proposal.gate_text(g.minimum)}, {g.change_key} "
                     f"{g.max_drop:.3f} "
                     f"({g.trivial} {g.metric} {g.majority:.3f}, {g.linear_name} {linear}, on "
                     f"the pipeline's eval split"
                     + (f"; without the flagged {', '.join(g.left_out)}" if g.left_out else "")
                     + ")")
        if g.no_lift():
            lines.append(f"    no baseline did better than {g.trivial} ({g.linear_name} "
                         f"{linear}): these columns may not predict {draft.label}, and the gate "
                         f"only keeps out a model no better than {g.trivial}; check the first "
                         "run's figures before trusting its model")
        if g.eval_rows < FEW_EVAL_ROWS:
            lines.append(f"    measured on {g.eval_rows} eval rows only: a figure moves by about "
                         f"{g.max_drop:.3f} from one split to another (the max drop allows "
                         "that much), too coarse to tell close models apart; more rows give "
                         "steadier gates")
    if earlier_runs:
        lines.append(f"Note: {earlier_runs} holds earlier runs of a dataset named {draft.name}; "
                     "its champion is the next run's baseline: delete the folder for a fresh "
                     "start.")
    make, python = _run_commands(draft.name, run_flags or [])
    lines.append(f"Then: {make}  (or {python})")
    out.write("\n".join(lines) + "\n")
