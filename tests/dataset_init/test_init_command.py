"""`python -m pipeline init`: refusals, the shipped datasets re-drafted from their CSVs, and an
end-to-end init then run on a public table the project has never seen."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import DATA, pipeline_command
from pipeline.config import dataset_spec as ds
from pipeline.config.settings import Settings
from pipeline.dataset_init import draft as drafting


def init(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("init", "--data-root", str(tmp_path / "data"), "--output-root",
                         str(tmp_path / "outputs"), *args),
        capture_output=True, text=True, timeout=600)


def _one_line_refusal(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("label, message", [
    ("tip", "the label 'tip' is not a column of"),
    ("pickup_census_tract", "has one value ('17031081401') on every row"),
])
def test_a_bad_label_is_refused_in_one_line_with_nothing_written(tmp_path, label, message):
    done = init(tmp_path, "--csv", str(DATA / "taxi" / "data.csv"), "--label", label)
    if label == "pickup_census_tract":  # empty on all rows but one: refused for the empties
        message = "is empty on 15,001 of 15,002 rows"
    _one_line_refusal(done, message)
    assert not (tmp_path / "data").exists() and not (tmp_path / "outputs").exists()


def test_a_header_of_single_quoted_names_says_how_to_name_the_label(tmp_path):
    """statsmodels' anes96 writes `'vote'` in its header: CSV keeps those quotes in the name,
    so `--label vote` is not a column; the refusal shows the names as they are and what to
    pass, which then drafts the dataset."""
    path = tmp_path / "anes.csv"
    path.write_text("'age','vote'\n" + "".join(f"{20 + i % 50},{i % 2}\n" for i in range(300)))
    done = init(tmp_path, "--csv", str(path), "--label", "vote")
    _one_line_refusal(done, "(columns: \"'age'\", \"'vote'\"); did you mean \"'vote'\"?")
    assert "pass --label \"'vote'\"" in done.stderr
    # What it says to pass drafts the dataset (in-process: a whole `init` takes ~6 s).
    assert drafting.infer(path, "'vote'", "anes").label == "'vote'"


def test_a_label_with_one_value_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n1,a\n2,a\n3,a\n")
    _one_line_refusal(init(tmp_path, "--csv", str(path), "--label", "y"),
                      "the label column 'y' has one value ('a') on every row")
    assert not (tmp_path / "data").exists()


def test_an_existing_dataset_folder_is_refused_without_force(tmp_path):
    folder = tmp_path / "data" / "penguins"
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("mine")
    # No --dataset: data/penguins/data.csv is named after its folder.
    done = init(tmp_path, "--csv", str(DATA / "penguins" / "data.csv"), "--label", "species")
    _one_line_refusal(done, "already exists; pass --force")
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_a_file_that_is_not_a_csv_is_refused(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n")
    _one_line_refusal(init(tmp_path, "--csv", str(path), "--label", "a"), "semicolon-delimited")


def _committed_and_drafted(dataset: str, label: str):
    committed = Settings(dataset=dataset).load_spec()
    return committed, drafting.infer(committed.csv_path, label, dataset)


def _same_type(committed: str, drafted: str) -> bool:
    """int and float are one thing to the pipeline (z-scored numbers): init writes what the
    ExampleGen reads (a whole-number column is int)."""
    numeric = set(ds.NUMERIC_TYPES)
    return committed == drafted or {committed, drafted} <= numeric


def test_taxi_redrafted_from_its_csv():
    committed, draft = _committed_and_drafted("taxi", "big_tipper")
    columns = {c.name: c for c in draft.columns}
    assert [c.name for c in draft.columns] == list(committed.column_names)
    assert columns["pickup_census_tract"].role == ds.IGNORE
    assert "empty on" in columns["pickup_census_tract"].reason
    tips = columns["tips"]
    assert tips.role == ds.IGNORE or (tips.flagged and "REVIEW" in tips.reason)
    assert not columns["payment_type"].flagged and columns["payment_type"].role == ds.FEATURE
    for f in committed.features:
        if f.role == ds.IGNORE or f.name == "tips":
            continue
        c = columns[f.name]
        assert c.role == f.role, (f.name, c.reason)
        if not _same_type(f.type, c.type):
            # The committed spec reads some area codes as codes; init reads whole numbers with
            # more than 32 values as codes only when they predict the label better one by one
            # than by range, and says so with the figures.
            assert {f.type, c.type} == {ds.INT, ds.CATEGORICAL_INT}, (f.name, f.type, c.type)
            assert "by value" in c.reason or "one by one" in c.reason, c.reason
    assert (draft.task.task, draft.task.classes) == (committed.task, committed.classes)
    assert draft.slice_by == committed.slice_by


def test_penguins_redrafted_from_its_csv():
    committed, draft = _committed_and_drafted("penguins", "species")
    columns = {c.name: c for c in draft.columns}
    for f in committed.features:
        c = columns[f.name]
        # `year` (2007-2009): the committed spec has codes; init drafts a time (rule 6b), so
        # that a file of a later year is not a value never seen.
        expected = (ds.INT, True) if f.name == "year" else (f.type, False)
        assert c.role == f.role and _same_type(expected[0], c.type), (f.name, f.type, c.type)
        assert c.time == expected[1], f.name
    assert (draft.task.task, draft.task.classes) == (committed.task, committed.classes)
    assert draft.slice_by == committed.slice_by
    assert not draft.ignored


@pytest.mark.e2e
def test_init_then_run_on_a_public_table_pushes_a_model(tmp_path):
    """scikit-learn's breast-cancer table as a user has it: names with spaces, an id column,
    the diagnosis as text. Drafted with no hand edit, then run: first with a gate no model
    reaches (the summary says which gate), then as drafted (pushed)."""
    from pipeline.bench.public_tables import write_csv

    csv_path = write_csv("breast_cancer_raw", tmp_path / "input" / "wdbc.csv")
    done = init(tmp_path, "--csv", str(csv_path), "--label", "diagnosis")
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "data" / "wdbc"
    assert {p.name for p in folder.iterdir()} == {"data.csv", "spec.yaml", "schema",
                                                  "expectations.json"}
    assert "id: a different whole number on every row" in done.stdout
    assert "eval rows only" not in done.stdout  # 569 rows: ~170 eval rows
    # TensorFlow's import lines (CUDA, TensorRT) go to the log file, not to the user.
    assert not [line for line in (done.stdout + done.stderr).splitlines()
                if "TensorRT" in line or "cuda" in line.lower()], done.stderr
    assert (folder / "schema" / "schema.pbtxt").read_text().startswith(
        "# Drafted by `make init` on ")
    spec = Settings(dataset="wdbc", data_root=tmp_path / "data").load_spec()
    assert spec.classes == ("benign", "malignant") and spec.gates.min_auc is not None

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            pipeline_command("run", "--dataset", "wdbc", "--data-root", str(tmp_path / "data"),
                             "--output-root", str(tmp_path / "outputs"), *extra),
            capture_output=True, text=True, timeout=900)

    # Up to the Evaluator, whose line names the gate: the Pusher of an unblessed model pushes
    # nothing, and the drafted run below runs (and checks) the Pusher.
    strict = run("--min-auc", "0.99999", "--until", "Evaluator")
    assert strict.returncode == 0, strict.stderr[-3000:]
    assert "is below the gate 0.99999 (gates.min_auc in spec.yaml, or --min-auc)" in \
        strict.stdout, strict.stdout
    drafted = run()
    assert drafted.returncode == 0, drafted.stderr[-3000:]
    assert "blessed yes" in drafted.stdout and "pushed to" in drafted.stdout, drafted.stdout
    assert any((tmp_path / "outputs" / "wdbc" / "serving").iterdir())


def test_a_rare_class_is_allowed_but_not_required_in_each_split(tmp_path):
    """make expectations' draft requires every class in both splits; a class of 3 rows may have
    none in the eval split, and the run would stop on its own data."""
    from components.contract import example_frames, suite_draft, suite_loading
    from pipeline.cli import init_command
    from pipeline.config.dataset_spec import load_spec
    from pipeline.dataset_init import spec_writer

    rows = ["x,kind"] + [f"{i % 7},{'A' if i % 2 else 'B'}" for i in range(300)] + \
        [f"{i % 7},C" for i in range(3)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "data.csv", "kind", "rare")
    (tmp_path / "spec.yaml").write_text(spec_writer.render(draft, "data.csv", "data.csv"))
    spec = load_spec(tmp_path / "spec.yaml")
    suite = suite_draft.draft_suite(example_frames.csv_frames(spec.csv_path, spec), spec)
    init_command._rare_classes_not_required_per_split(suite, spec, draft)
    per_split = [e for e in suite["expectations"] if e["meta"].get("per_split")]
    contain = next(e for e in per_split
                   if e["type"] == "expect_column_distinct_values_to_contain_set")
    assert contain["kwargs"]["value_set"] == ["A", "B"]
    assert "C" in contain["meta"]["rare_classes"]
    assert not any(e["kwargs"].get("value_set") == ["C"] for e in per_split)
    allowed = next(e for e in suite["expectations"] if e["type"] ==
                   "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "kind"
                   and not e["meta"].get("per_split"))
    assert allowed["kwargs"]["value_set"] == ["A", "B", "C"]
    suite_loading.parse_suite(suite, spec, "test")


@pytest.mark.parametrize("rows, per_split", [(16, False), (300, True)])
def test_a_regression_labels_moments_are_judged_on_the_whole_file_when_a_split_is_small(
        tmp_path, rows, per_split):
    """make expectations' draft bounds a regression label's mean and standard deviation in each
    split; statsmodels' longley (16 rows) stopped on its own data: its 2 eval rows' spread,
    822, was under the bound 877. With a split of fewer than 30 rows they are judged on the
    whole file; on 300 rows, per split as drafted."""
    import random

    from components.contract import example_frames, suite_draft, suite_loading
    from pipeline.cli import init_command
    from pipeline.config.dataset_spec import load_spec
    from pipeline.dataset_init import spec_writer

    rng = random.Random(3)
    lines = ["x,employed"] + [f"{round(rng.gauss(0, 1), 3)},{60_000 + 97 * i}"
                              for i in range(rows)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    draft = drafting.infer(tmp_path / "data.csv", "employed", "small")
    assert draft.task.task == "regression" and sum(draft.split_rows) == rows
    (tmp_path / "spec.yaml").write_text(spec_writer.render(draft, "data.csv", "data.csv"))
    spec = load_spec(tmp_path / "spec.yaml")
    suite = suite_draft.draft_suite(example_frames.csv_frames(spec.csv_path, spec), spec)
    init_command._label_moments_of_small_splits_on_the_whole_file(suite, spec, draft)
    moments = [e for e in suite["expectations"] if e["type"] in (
        "expect_column_mean_to_be_between", "expect_column_stdev_to_be_between")]
    assert len(moments) == 2
    assert all(e["meta"]["per_split"] is per_split for e in moments)
    assert all(("small_split" in e["meta"]) is not per_split for e in moments)
    assert [c.per_split for c in suite_loading.parse_suite(suite, spec, "test").checks
            if c.type in ("expect_column_mean_to_be_between",
                          "expect_column_stdev_to_be_between")] == [per_split] * 2


def test_a_sampled_draft_widens_string_domains_and_counts_the_whole_file():
    """A schema and suite drafted from a sample of a large file: a rare value the sample missed
    must not stop the run, and the row count is the file's."""
    from pipeline.cli import init_command

    schema = ('feature {\n  name: "company"\n  type: BYTES\n  domain: "company"\n}\n'
              'feature {\n  name: "fare"\n  type: FLOAT\n}\n'
              'feature {\n  name: "flag"\n  type: INT\n  bool_domain {\n  }\n}\n'
              'string_domain {\n  name: "company"\n  value: "A"\n}\n')
    widened = init_command._widen_domains(schema)
    assert widened.count("min_domain_mass: 0.99") == 1  # company only, not fare
    # A column of 0 and 1 in the sample may hold a 2 elsewhere (grants_other): not boolean.
    assert "bool_domain" not in widened and 'name: "flag"' in widened
    suite = {"expectations": [{"type": "expect_table_row_count_to_be_between",
                               "kwargs": {"min_value": 25000, "max_value": 100000},
                               "meta": {"observed": "50000 rows"}}]}
    init_command._whole_file_rows(suite, 1_500_000)
    assert suite["expectations"][0]["kwargs"] == {"min_value": 750_000, "max_value": 3_000_000}


def test_the_raw_boston_file_is_refused_for_its_count_line(tmp_path):
    """sklearn's raw boston_house_prices.csv: line 1 is `506,13,,,...` (rows and columns), the
    header is line 2."""
    import sklearn

    raw = Path(sklearn.__file__).parent / "datasets" / "data" / "boston_house_prices.csv"
    done = init(tmp_path, "--csv", str(raw), "--label", "MEDV")
    _one_line_refusal(done, "line 1 (506,13) looks like a count or title line, not a header, "
                            "and the header seems to be on line 2 (CRIM, ZN, INDUS, CHAS, NOX, "
                            "...): remove line 1")
    assert "have no name" not in done.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.e2e  # init's schema draft is a TFX pipeline run (Beam)
def test_the_printed_commands_carry_the_folders_init_was_given(tmp_path):
    """The "Then:" commands, and the one-run override for a champion trained with a flagged
    column, can be pasted: they name the --data-root and --output-root init wrote to."""
    rows = ["x,copy,label"] + [f"{i % 11},{'ab'[i % 2]},{i % 2}" for i in range(120)]
    (tmp_path / "small.csv").write_text("\n".join(rows) + "\n")
    done = init(tmp_path, "--csv", str(tmp_path / "small.csv"), "--label", "label",
                "--train-ratio", "0.6")
    assert done.returncode == 0, done.stderr[-3000:]
    roots = ["--data-root", str((tmp_path / "data").resolve()),
             "--output-root", str((tmp_path / "outputs").resolve()), "--train-ratio", "0.6"]
    then = next(line for line in done.stdout.splitlines() if line.startswith("Then: "))
    make, python = then[len("Then: "):].split("  (or ")
    assert shlex.split(make) == ["make", "pipeline", "DATASET=small", "ARGS=" + " ".join(roots)]
    assert shlex.split(python.rstrip(")")) == [
        "python", "-m", "pipeline", "run", "--dataset", "small", *roots]
    # 120 rows at 0.6: ~48 eval rows, too few for steady gates, and init says so.
    coarse = next(line for line in done.stdout.splitlines() if "eval rows only" in line)
    assert int(coarse.split("measured on ")[1].split()[0]) < 100, coarse
    override = next(line for line in done.stdout.splitlines() if "run once: " in line)
    assert shlex.split(override.split("run once: ")[1]) == [
        "make", "pipeline", "DATASET=small",
        "ARGS=" + " ".join(["--max-metric-drop", "1", *roots])]


def test_a_flagged_column_that_is_ignored_is_explained_once(tmp_path):
    import io

    from pipeline.cli import init_command
    from pipeline.dataset_init import draft as drafting

    rows = ["x,when,label"] + [f"{i % 13},2024-01-{i % 28 + 1:02d} 09:30:00,{i % 2}"
                               for i in range(200)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "t.csv", "label", "t")
    out = io.StringIO()
    init_command._report(draft, tmp_path, out, 0.1, 0.2)
    text = out.getvalue()
    assert text.count("when: REVIEW: dates") == 1, text
    assert "    when: flagged above" in text.split("ignored (1):")[1]


def test_a_wide_tables_summary_lists_columns_ignored_for_one_reason_on_one_line(tmp_path):
    """grants (1,503 columns) printed 813 lines of "one value ('0') on every row"; the
    summary now groups a reason many columns share and names the first few."""
    import io

    from pipeline.cli import init_command
    from pipeline.dataset_init import draft as drafting

    constant = [f"c{i:02d}" for i in range(15)]
    header = ["x", "y", *constant, "label"]
    rows = [",".join(header)] + [",".join([str(i % 17), str((i * 7) % 23), *["0"] * 15,
                                           str(i % 2)]) for i in range(200)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "t.csv", "label", "t")
    assert len(draft.ignored) == 15
    out = io.StringIO()
    init_command._report(draft, tmp_path, out, 0.1, 0.2)
    ignored = out.getvalue().split("ignored (15):\n")[1].split("\n  features")[0].splitlines()
    assert len(ignored) == 1, ignored
    assert ignored[0].startswith("    15 columns, one value ('0') on every row")
    assert "c00, c01" in ignored[0] and "c09" in ignored[0] and "c10" not in ignored[0]
    assert ignored[0].endswith("and 5 more (spec.yaml lists them all)")


def test_init_says_so_when_no_baseline_beats_the_trivial_one(tmp_path):
    """A label the columns do not predict (noise here): the gate sits just above the trivial
    figure, and the summary says that it keeps out only a guesser."""
    import io

    import numpy as np

    from pipeline.cli import init_command
    from pipeline.dataset_init import draft as drafting

    rng = np.random.default_rng(0)
    rows = ["x,z,label"] + [f"{rng.normal():.4f},{rng.integers(0, 50)},"
                            f"{rng.lognormal(8, 2):.1f}" for _ in range(400)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "t.csv", "label", "t")
    assert draft.task.task == "regression" and draft.gates.no_lift()
    out = io.StringIO()
    init_command._report(draft, tmp_path, out, 0.1, 0.2)
    assert "no baseline did better than the train mean (a ridge regression -0.0" in \
        out.getvalue(), out.getvalue()

    # A label the columns do predict: no such line.
    rows = ["x,z,label"] + [f"{v:.4f},{i % 50},{3 * v + rng.normal(0, 0.1):.4f}"
                            for i, v in enumerate(rng.normal(size=400))]
    (tmp_path / "u.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "u.csv", "label", "u")
    assert not draft.gates.no_lift()
    out = io.StringIO()
    init_command._report(draft, tmp_path, out, 0.1, 0.2)
    assert "no baseline did better" not in out.getvalue()


def test_the_summary_warns_of_a_class_in_one_split_and_says_why_text_is_ignored(tmp_path):
    """A class of one row gets one warning line under the task; a long description repeated on
    many rows is listed as ignored free text with its reason."""
    import io
    import random

    from pipeline.cli import init_command
    from pipeline.dataset_init import draft as drafting

    rng = random.Random(4)
    notes = [" ".join(rng.choice(["stolen", "laptop", "office", "records"]) for _ in range(20))
             for _ in range(4)]
    rows = ["x,note,kind"] + [f"{rng.random():.3f},{notes[i % 4]},{'AB'[i % 2]}"
                              for i in range(300)] + ["0.5,short note,C"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    draft = drafting.infer(tmp_path / "t.csv", "kind", "t")
    out = io.StringIO()
    init_command._report(draft, tmp_path, out, 0.1, 0.2)
    lines = out.getvalue().splitlines()
    task = next(i for i, line in enumerate(lines) if line.startswith("  task: "))
    assert "C (1)" in lines[task]
    warning = lines[task + 1]
    assert warning.startswith("  warning: class 'C' (1 row) is in the "), warning
    assert "then run init again" in warning
    assert sum("warning:" in line for line in lines) == 1
    (note,) = [line for line in lines if line.startswith("    note: ")]
    assert note.startswith("    note: free text (19.9 words per value, 5 distinct on 301 "
                           "rows): at least 15 words is longer than a category's name"), note
