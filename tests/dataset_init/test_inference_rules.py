"""Each of init's inference rules on small hand-made tables (pipeline/dataset_init)."""
from __future__ import annotations

import csv
import random
import sys

import numpy as np
import pytest
import yaml

from pipeline.config import dataset_spec as ds
from pipeline.config.dataset_spec import load_spec
from pipeline.dataset_init import draft as drafting
from pipeline.dataset_init import gate_proposal, hash_split, leakage, spec_writer, table_sample
from pipeline.dataset_init.task import LabelRefused

ROWS = 1200


def write_csv(path, columns: dict[str, list]) -> str:
    names = list(columns)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names)))
    return str(path)


def base_table(seed: int = 1, rows: int = ROWS) -> dict[str, list]:
    """A label driven (noisily) by a number and a category, and columns of every kind."""
    rng = random.Random(seed)
    colour = [rng.choice(["red", "green", "blue"]) for _ in range(rows)]
    size = [round(rng.gauss(10, 3), 2) for _ in range(rows)]
    score = [s + {"red": 2, "green": 0, "blue": -2}[c] + rng.gauss(0, 2.5)
             for s, c in zip(size, colour)]
    label = [int(s > 10) for s in score]
    return {
        "row_id": list(range(1, rows + 1)),
        "size": size,
        "colour": colour,
        "hour": [rng.randrange(24) for _ in range(rows)],
        "visits": [rng.randrange(500) for _ in range(rows)],
        "country": ["NL"] * rows,
        "notes": ["" if rng.random() < 0.97 else "seen" for _ in range(rows)],
        "comment": [" ".join(rng.choice(["very", "good", "bad", "item", "late", "fast",
                                         "box", "arrived", "broken", "fine"])
                             for _ in range(rng.randrange(3, 9))) for _ in range(rows)],
        "customer": [f"C{rng.randrange(10**9):09d}" for _ in range(rows)],
        "label": label,
    }


def drafted(tmp_path, columns, label="label", **kwargs):
    path = write_csv(tmp_path / "table.csv", columns)
    return drafting.infer(path, label, "t", **kwargs)


def by_name(draft):
    return {c.name: c for c in draft.columns}


def test_each_role_rule_on_a_table_of_every_kind(tmp_path):
    draft = drafted(tmp_path, base_table())
    c = by_name(draft)
    assert (c["row_id"].role, c["row_id"].reason) == (
        ds.IGNORE, "a different whole number on every row and its name says id: an identifier")
    assert c["country"].role == ds.IGNORE and "constant" in c["country"].reason
    assert c["notes"].role == ds.IGNORE and "too few values" in c["notes"].reason
    assert c["comment"].role == ds.IGNORE and "free text" in c["comment"].reason
    assert c["customer"].role == ds.IGNORE and "identifier or a name" in c["customer"].reason
    assert (c["size"].type, c["size"].role) == (ds.FLOAT, ds.FEATURE)
    assert (c["colour"].type, c["colour"].role) == (ds.CATEGORICAL, ds.FEATURE)
    assert c["hour"].type == ds.CATEGORICAL_INT  # 24 distinct whole numbers: codes
    assert c["visits"].type == ds.INT  # 500 possible values on 1,200 rows: an amount
    assert (c["label"].role, c["label"].type) == (ds.LABEL, ds.INT)
    assert draft.task.task == ds.BINARY and draft.task.classes == ("0", "1")
    assert draft.slice_by == "colour"
    assert not draft.flagged


def test_a_row_number_counting_up_is_ignored_whatever_its_name(tmp_path):
    table = base_table()
    table["n"] = table.pop("row_id")
    assert by_name(drafted(tmp_path, table))["n"].role == ds.IGNORE


def test_unique_whole_numbers_in_random_order_stay_an_amount(tmp_path):
    table = base_table()
    rng = random.Random(3)
    table["amount"] = rng.sample(range(10**6), ROWS)
    assert by_name(drafted(tmp_path, table))["amount"].role == ds.FEATURE


def test_integer_codes_that_act_as_names_become_categorical_int(tmp_path):
    """60 area codes whose effect has nothing to do with their order: a vocabulary, although
    more than 32 distinct."""
    rng = random.Random(5)
    rows = 6000
    effect = {a: rng.choice([-3, 3]) for a in range(1, 61)}
    area = [rng.randrange(1, 61) for _ in range(rows)]
    label = [int(effect[a] + rng.gauss(0, 2) > 0) for a in area]
    amount = [rng.randrange(100, 300) for _ in range(rows)]
    draft = drafted(tmp_path, {"area": area, "amount": amount, "label": label})
    c = by_name(draft)
    assert c["area"].type == ds.CATEGORICAL_INT, c["area"].reason
    assert c["amount"].type == ds.INT and c["amount"].buckets == 32


def test_leakage_is_ignored_and_a_strong_predictor_flagged_not_ignored(tmp_path):
    rng = random.Random(7)
    rows = 3000
    label = [rng.randrange(2) for _ in range(rows)]
    table = {
        # The label spelled out: a copy of the answer.
        "outcome_code": ["approved" if y else "declined" for y in label],
        # Separates the classes well but not perfectly (AUC ~0.97).
        "strong": [round(y * 3.5 + rng.gauss(0, 1), 3) for y in label],
        "weak": [round(y * 0.3 + rng.gauss(0, 1), 3) for y in label],
        "label": label,
    }
    c = by_name(drafted(tmp_path, table))
    assert c["outcome_code"].role == ds.IGNORE and "leakage" in c["outcome_code"].reason
    assert c["outcome_code"].score >= leakage.LEAK_IGNORE
    assert c["strong"].role == ds.FEATURE and c["strong"].flagged
    assert leakage.LEAK_FLAG <= c["strong"].score < leakage.LEAK_IGNORE
    assert "REVIEW" in c["strong"].reason
    assert c["weak"].role == ds.FEATURE and not c["weak"].flagged


def test_a_perfect_predictor_on_too_few_rows_is_flagged_not_ignored(tmp_path):
    label = [i % 2 for i in range(60)]
    table = {"copy": ["a" if y else "b" for y in label], "x": list(range(60)), "label": label}
    c = by_name(drafted(tmp_path, table))
    assert c["copy"].role == ds.FEATURE and c["copy"].flagged


@pytest.mark.parametrize("values, task, classes", [
    (["no", "yes"], ds.BINARY, ("no", "yes")),
    (["Yes", "No"], ds.BINARY, ("No", "Yes")),
    (["oui", "non"], ds.BINARY, ("non", "oui")),  # the rarer one would be second
    (["Ja", "Nein"], ds.BINARY, ("Nein", "Ja")),
    (["cat", "dog"], ds.BINARY, None),  # the rarer one second
    (["Adelie", "Gentoo", "Chinstrap"], ds.MULTICLASS, ("Adelie", "Chinstrap", "Gentoo")),
    ([3, 1, 2], ds.MULTICLASS, ("1", "2", "3")),
    ([10, 2], ds.BINARY, ("2", "10")),  # numeric order, not text order
    ([0.0, 1.0, 2.0], ds.MULTICLASS, ("0.000000", "1.000000", "2.000000")),
    (["01", "2", "1"], ds.BINARY, ("1", "2")),  # 01 is the Transform's 1: one class
])
def test_task_and_class_order(tmp_path, values, task, classes):
    rng = random.Random(11)
    rows = 400
    label = [values[0] if i < 250 else rng.choice(values[1:]) for i in range(rows)]
    table = {"x": [rng.random() for _ in range(rows)], "label": label}
    draft = drafted(tmp_path, table)
    assert draft.task.task == task
    if classes is None:
        assert draft.task.classes == (values[0], values[1])  # cat: 250 rows, dog: 150
    elif values[0] == "01":
        assert draft.task.classes == classes and sum(draft.task.counts.values()) == 400
    else:
        assert draft.task.classes == classes


def test_many_distinct_numbers_are_regression_or_a_clear_refusal(tmp_path):
    rng = random.Random(2)
    table = {"x": [rng.random() for _ in range(300)],
             "price": [round(rng.uniform(1, 500), 2) for _ in range(300)]}
    if "regression" in ds.TASKS:
        assert drafted(tmp_path, table, label="price").task.task == "regression"
    else:
        with pytest.raises(LabelRefused, match="regression task, which this version"):
            drafted(tmp_path, table, label="price")


@pytest.mark.parametrize("label, message", [
    ("nope", "the label 'nope' is not a column"),
    ("one", "has one value ('x') on every row"),
    ("gappy", "is empty on 1 of 100 rows; the pipeline trains on labelled rows only: drop those "
              "rows (or fill them) and run init again (line 3)"),
    ("words", "more than 50 classes"),
    # R's airquality: Ozone readings with NA for missing, not 68 text classes.
    ("ozone", "the label column 'ozone' is missing ('NA') on 2 of 100 rows; the pipeline trains "
              "on labelled rows only: drop those rows (or fill them) and run init again (line 3, "
              "6)"),
    ("cased", "writes a class in more than one way ('No' and 'no'; 'Yes ' and 'yes')"),
])
def test_refusals(tmp_path, label, message):
    table = {"x": list(range(100)), "one": ["x"] * 100,
             "gappy": ["a", ""] + ["b"] * 98, "words": [f"w{i}" for i in range(100)],
             "cased": ["yes", "no", "Yes ", "No"] * 25,
             "ozone": [str(40 + i) if i not in (1, 4) else "NA" for i in range(100)]}
    with pytest.raises(LabelRefused, match=message.replace("(", r"\(").replace(")", r"\)")) \
            as refused:
        drafted(tmp_path, table, label=label)
    assert str(tmp_path) in str(refused.value)  # the file is named


def test_dirty_header_names_survive_the_spec(tmp_path):
    """Spaces, commas, quotes, colons, non-ASCII letters, YAML words and numbers-as-names."""
    rng = random.Random(4)
    rows = 300
    label = [rng.choice(["1. < HS Grad", "2. HS Grad", "3. Some College"]) for _ in range(rows)]
    names = ["mean radius", "price, in €", 'say "hi"', "key: value", "Größe", "yes", "007",
             "#hash"]
    table = {n: [round(rng.random(), 3) for _ in range(rows)] for n in names}
    table["Education level"] = label
    path = write_csv(tmp_path / "dirty.csv", table)
    draft = drafting.infer(path, "Education level", "dirty")
    folder = tmp_path / "dirty"
    folder.mkdir()
    (folder / "spec.yaml").write_text(spec_writer.render(draft, "../dirty.csv", path),
                                      encoding="utf-8")
    spec = load_spec(folder / "spec.yaml")
    assert spec.column_names == tuple(names + ["Education level"])
    assert spec.classes == ("1. < HS Grad", "2. HS Grad", "3. Some College")
    assert spec.task == ds.MULTICLASS


def test_every_spec_line_has_a_comment_and_loads(tmp_path):
    path = write_csv(tmp_path / "table.csv", base_table())
    draft = drafting.infer(path, "label", "t")
    text = spec_writer.render(draft, "table.csv", path)
    (tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(tmp_path / "spec.yaml")
    feature_lines = text.split("features:\n")[1].splitlines()
    assert len(feature_lines) == len(spec.features)
    assert all("  # " in line for line in feature_lines)
    assert spec.gates.min_auc == draft.gates.minimum
    assert yaml.safe_load(text)["gates"]["max_metric_drop"] == draft.gates.max_drop


@pytest.mark.parametrize("value, expected", [
    ("fare", "fare"), ("yes", '"yes"'), ("007", '"007"'), ("1.50", '"1.50"'), ("0", "0"),
    ("a b", '"a b"'), ("null", '"null"'), ("Größe", '"Größe"'), ("1", "1"),
])
def test_yaml_scalars_read_back_as_the_same_text(value, expected):
    assert spec_writer.scalar(value) == expected
    assert str(yaml.safe_load(spec_writer.scalar(value))) == value


def test_the_sample_is_uniform_seeded_and_keeps_file_order(tmp_path):
    rows = 5000
    path = write_csv(tmp_path / "big.csv", {"i": list(range(rows)), "y": [i % 2 for i in range(rows)]})
    first = table_sample.read(path, count="y", sample_rows=500)
    again = table_sample.read(path, count="y", sample_rows=500)
    taken = [int(v) for v in first.column("i")]
    assert first.rows == rows and first.sampled and len(taken) == 500
    assert taken == sorted(taken) == [int(v) for v in again.column("i")]
    assert np.mean(taken) == pytest.approx(rows / 2, rel=0.1)  # not the first 500 rows
    assert first.counts == {"0": 2500, "1": 2500}  # counted over the whole file


def test_the_split_is_the_example_gens(tmp_path):
    """Same bytes, same hash: the split init measures on is the pipeline's."""
    from components.ingest.example_encoding import ExampleEncoder
    from components.ingest.hash_partition import Partition

    table = table_sample.read(write_csv(tmp_path / "t.csv", base_table(rows=200)))
    ours = hash_split.splits(table.sample, table.header, table.types, 0.7)
    records = ExampleEncoder(table.header, table.types).encode(
        table.sample.to_batches(max_chunksize=10**6)[0])
    assert list(ours) == Partition([70, 100]).splits(records)
    assert 0.55 < (ours == hash_split.TRAIN).mean() < 0.85


def test_inference_imports_neither_tensorflow_nor_tfx(tmp_path):
    import subprocess

    path = write_csv(tmp_path / "t.csv", base_table(rows=300))
    code = ("import sys; from pipeline.dataset_init import draft, spec_writer; "
            f"spec_writer.render(draft.infer({path!r}, 'label', 't'), 'd.csv', 'x'); "
            "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("header, message", [
    ("x,,label", "column 2 of the header has no name; name or drop it"),
    ("x,x,label", "the header names column 'x' 2 times (columns 1 and 2); rename them"),
    (",x,label", "column 1 of the header has no name and holds 0, 1, 2, ...: a row index"),
])
def test_a_header_the_pipeline_refuses_is_refused(tmp_path, header, message):
    path = tmp_path / "h.csv"
    path.write_text(header + "\n" + "\n".join(f"{i},{i},{i % 2}" for i in range(50)) + "\n")
    with pytest.raises(LabelRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        drafting.infer(path, "label", "h")


def test_a_regression_label_gets_gates_from_the_mean_and_a_ridge(tmp_path):
    if "regression" not in ds.TASKS:
        pytest.skip("regression is not a task of this spec format")
    rng = random.Random(8)
    x = [rng.uniform(0, 10) for _ in range(600)]
    table = {"x": [round(v, 3) for v in x], "noise": [rng.random() for _ in x],
             "y": [round(3 * v + rng.gauss(0, 3), 2) for v in x]}
    path = write_csv(tmp_path / "r.csv", table)
    draft = drafting.infer(path, "y", "r")
    assert draft.task.task == "regression" and draft.task.classes == ()
    assert draft.gates.gates().keys() == {"min_improvement_over_mean", "max_rmse_increase"}
    assert 0.3 < draft.gates.minimum < draft.gates.linear < 1
    (tmp_path / "spec.yaml").write_text(spec_writer.render(draft, "r.csv", path))
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.gates.min_improvement_over_mean == draft.gates.minimum


def test_a_label_computed_from_several_columns_is_flagged_and_gated_without_them(tmp_path):
    """A total of three spending columns (as randhie's meddol, the sum of five): no column alone
    restates it, so leakage.py flags none, but a ridge on them all reads 1.000. Init flags the
    label, names the columns the fit needs, and measures the gates without them; a label a ridge
    predicts well but not exactly is left alone."""
    rng = random.Random(4)
    rows = 800
    visits = [rng.randrange(10) for _ in range(rows)]
    parts = {name: [round(rng.expovariate(1 / scale) * (v + 1), 2) for v in visits]
             for name, scale in (("drugs", 30), ("hospital", 400), ("office", 80))}
    total = [round(sum(p[i] for p in parts.values()), 2) for i in range(rows)]
    table = {**parts, "visits": visits, "age": [rng.randrange(18, 90) for _ in range(rows)],
             "total": total}
    draft = drafted(tmp_path, table, "total")
    gates = draft.gates
    assert gates.exact_figure > 0.99 and set(gates.exact_fit) == set(parts)
    assert not any(c.flagged for c in draft.columns)  # no single column gives it away
    assert set(gates.left_out) == set(parts) and gates.linear < 0.9  # visits and age only
    assert gates.minimum == int(gates.linear * 0.8 * 100) / 100
    note = gates.computed_label_note()
    assert "predicts it almost exactly" in note and "drugs" in note
    spec_text = spec_writer.render(draft, "table.csv", str(tmp_path / "table.csv"))
    assert "label: total  # REVIEW: a ridge regression" in spec_text

    noisy = dict(table, total=[round(t + rng.gauss(0, 60), 2) for t in total])
    gates = drafted(tmp_path, noisy, "total").gates
    assert gates.exact_fit is None and gates.computed_label_note() == ""
    assert 0.5 < gates.linear < 0.99 and gates.left_out == ()


def test_a_year_or_a_timestamp_named_as_one_is_a_time_not_a_code_or_an_id(tmp_path):
    """Rule 6b: new data comes later, so a year is a number with `time: true` (as a code, every
    later year was a value never seen, and the contract's value set refused a file of them); a
    timestamp different on every row and counting up is a time, not an identifier. The name and
    the values must both say so."""
    rng = random.Random(6)
    rows = 600
    table = {
        "year": [rng.randrange(1995, 2015) for _ in range(rows)],
        "study_year": [rng.randrange(1, 6) for _ in range(rows)],  # 1..5: a code
        "price": [rng.randrange(1900, 2100) for _ in range(rows)],  # in range, not named so
        "created_at": [1_600_000_000 + 3_600 * i for i in range(rows)],
        "sold_ts_ms": [1_600_000_000_000 + rng.randrange(10**9) for _ in range(rows)],
        "label": [rng.randrange(2) for _ in range(rows)],
    }
    draft = drafted(tmp_path, table)
    columns = by_name(draft)
    times = {name: (c.type, c.time) for name, c in columns.items() if c.time}
    assert times == {"year": (ds.INT, True), "created_at": (ds.INT, True),
                     "sold_ts_ms": (ds.INT, True)}
    assert columns["created_at"].role == ds.FEATURE  # not ignored as an identifier
    assert columns["study_year"].type == ds.CATEGORICAL_INT and not columns["price"].time
    assert columns["year"].reason.startswith("a year, 20 distinct: new data comes later")
    # The spec says so, loads, and the contract drafted from it bounds a time from below only.
    (tmp_path / "spec.yaml").write_text(spec_writer.render(draft, "table.csv",
                                                           str(tmp_path / "table.csv")))
    assert "year: {type: int, time: true}" in (tmp_path / "spec.yaml").read_text()
    spec = load_spec(tmp_path / "spec.yaml")
    import pandas as pd

    from components.contract import suite_draft

    suite = suite_draft.draft_suite([pd.DataFrame(table)], spec)
    ranges = {e["kwargs"]["column"]: e["kwargs"] for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_between"}
    assert "max_value" not in ranges["year"] and ranges["year"]["min_value"] <= 1995
    assert ranges["price"]["max_value"] >= 2099  # not a time: bounded on both sides


def _yearly_table(rng: random.Random, years: int) -> dict[str, list]:
    """A table of a year a row, as statsmodels' longley (16 years of US employment figures): a
    row number, a year, measurements of thousands (one rising every year, as the population
    does), a decimal index, and the employment to predict, every value on one row."""
    population = [107_608]
    for _ in range(years - 1):
        population.append(population[-1] + rng.randint(900, 2_600))
    gnp = [234_289 + 12_000 * i + rng.randint(-15_000, 15_000) for i in range(years)]
    return {"Obs": list(range(1, years + 1)), "YEAR": list(range(1947, 1947 + years)),
            "GNP": gnp, "UNEMP": rng.sample(range(1_800, 4_900), years), "POP": population,
            "GNPDEFL": [round(83 + 2.2 * i + rng.random(), 1) for i in range(years)],
            "STRIKES": [rng.randint(1, 8) for _ in range(years)],
            "TOTEMP": [g // 4 + rng.randint(-900, 900) for g in gnp]}


def test_whole_numbers_of_a_small_table_are_amounts_not_classes_or_vocabularies(tmp_path):
    """longley (16 rows): TOTEMP was 16 classes of one row each (accuracy 0, not pushed), GNP
    and UNEMP vocabularies of one row a value, POP an identifier because it rises year by year.
    Whole numbers that do not repeat are quantities: regression with int features."""
    draft = drafted(tmp_path, _yearly_table(random.Random(16), 16), label="TOTEMP")
    assert draft.task.task == "regression", draft.task.reason
    assert draft.task.reason.startswith("16 distinct whole numbers, 16 of them on one row only")
    c = by_name(draft)
    for name in ("GNP", "UNEMP", "POP"):
        assert (c[name].type, c[name].role) == (ds.INT, ds.FEATURE), (name, c[name].reason)
    assert "1.0 rows a value" in c["GNP"].reason
    assert c["Obs"].role == ds.IGNORE and "counts up" in c["Obs"].reason  # 1..16: a row number
    assert c["YEAR"].time
    # An amount of at most 12 values is no slicing column (linnerud's Chins sliced 7 eval rows
    # 7 ways): only text, codes and two-valued whole numbers are.
    assert c["STRIKES"].type == ds.INT and draft.slice_by == ""


@pytest.mark.parametrize("rows, task", [(60, "regression"), (600, ds.MULTICLASS)])
def test_whole_number_classes_must_repeat(tmp_path, rows, task):
    """The same 15 scores: on 60 rows most are on one row each (a class of one row is in one
    split only, never both trained on and evaluated), on 600 each has rows of its own."""
    rng = random.Random(4)
    scores = [rng.choice(range(1, 16)) for _ in range(rows)]
    if rows == 60:  # most values once: 11 on one row, the rest on the others
        scores = list(range(1, 12)) + [rng.choice(range(12, 16)) for _ in range(rows - 11)]
    table = {"x": [round(s + rng.gauss(0, 2), 2) for s in scores], "score": scores}
    assert drafted(tmp_path, table, label="score").task.task == task


@pytest.mark.parametrize("rows, kind", [(40, ds.INT), (200, ds.CATEGORICAL_INT)])
def test_few_whole_numbers_are_codes_only_where_each_has_rows_to_learn_from(tmp_path, rows,
                                                                             kind):
    """spector's TUCE (14 test scores on 32 rows) was a vocabulary of 2.3 rows a value; the
    same 14 values on 200 rows are codes, as hours and months are."""
    rng = random.Random(8)
    score = [rng.randint(12, 25) for _ in range(rows)]
    table = {"score": score, "x": [round(rng.random(), 3) for _ in range(rows)],
             "label": [int(s + rng.gauss(0, 3) > 19) for s in score]}
    column = by_name(drafted(tmp_path, table))["score"]
    assert len(set(score)) == 14 and column.type == kind, column.reason


def test_a_number_rising_row_by_row_in_a_table_in_time_order_is_an_amount(tmp_path):
    """In a table of a year a row, a measurement rises with the years (longley's POP): an
    identifier only when its values are as close together as row numbers; with no time column
    rising beside it, a column counting up is an identifier as before (NHEFS' seqn)."""
    rng = random.Random(17)
    rows = 300
    table = {"year": [1800 + i // 2 for i in range(rows)],
             "population": sorted(rng.sample(range(10**6, 10**8), rows)),
             "serial": list(range(1001, 1001 + rows)),
             "x": [round(rng.random(), 3) for _ in range(rows)],
             "label": [rng.choice("ab") for _ in range(rows)]}
    c = by_name(drafted(tmp_path, table))
    assert (c["population"].role, c["population"].type) == (ds.FEATURE, ds.INT)
    assert c["serial"].role == ds.IGNORE and "counts up" in c["serial"].reason
    del table["year"]
    (tmp_path / "no_time").mkdir()
    assert by_name(drafted(tmp_path / "no_time", table))["population"].role == ds.IGNORE


def _label_and_copy(task: str, rng: random.Random, x: list[float]) -> tuple[list, list]:
    """A label a weak feature predicts noisily, and a near-copy of it (flagged: too few eval
    rows to ignore it outright)."""
    noisy = [v + rng.gauss(0, 1) for v in x]
    if task == ds.BINARY:
        label = [int(v > 0) for v in noisy]
        return label, [f"c{y}" for y in label]
    if task == ds.MULTICLASS:
        label = [0 if v < -0.6 else 1 if v < 0.6 else 2 for v in noisy]
        return label, [f"c{y}" for y in label]
    label = [round(v * 10, 2) for v in noisy]
    return label, [round(y + rng.gauss(0, 0.05), 3) for y in label]


@pytest.mark.parametrize("task, override", [
    (ds.BINARY, "--max-metric-drop 1"), (ds.MULTICLASS, "--max-metric-drop 1"),
    ("regression", "--max-rmse-increase 100")])
def test_the_gates_leave_flagged_columns_out(tmp_path, task, override):
    """A gate measured with a column that turns out to be leakage is one no model without it
    reaches (taxi's big_tipper with tips: AUC 0.999, max_metric_drop 0.001): the linear baseline
    leaves flagged columns out, and their comment says how to replace a champion trained with
    one."""
    if task not in ds.TASKS:
        pytest.skip(f"{task} is not a task of this spec format")
    rng = random.Random(12)
    x = [rng.gauss(0, 1) for _ in range(300)]
    label, copy = _label_and_copy(task, rng, x)
    draft = drafted(tmp_path, {"x": [round(v, 3) for v in x], "copy": copy, "label": label})
    assert draft.task.task == task
    c = by_name(draft)
    assert c["copy"].role == ds.FEATURE and c["copy"].flagged, c["copy"].reason
    gates = draft.gates
    # With the copy the linear model is (nearly) perfect; x alone predicts the label noisily.
    assert gates.linear is not None and gates.linear < 0.9, gates
    assert gates.minimum < 0.8 and gates.max_drop > 0.001, gates
    assert gates.left_out == ("copy",)
    assert override in c["copy"].reason and gates.key in c["copy"].reason
    text = spec_writer.render(draft, "table.csv", "table.csv")
    gates_line = next(line for line in text.splitlines() if line.startswith("gates:"))
    assert "without the flagged column(s) copy" in gates_line
    copy_line = next(line for line in text.splitlines() if line.startswith("  copy:"))
    assert "REVIEW" in copy_line and override in copy_line
    assert not c["x"].flagged and override not in c["x"].reason


def test_a_count_line_above_the_header_is_named_as_such(tmp_path):
    """scikit-learn's raw boston_house_prices.csv starts with `506,13`, its header on line 2:
    not 'columns 3, 4, ... have no name'."""
    path = tmp_path / "b.csv"
    path.write_text("506,3,\n" + '"CRIM","ZN","MEDV"\n'
                    + "".join(f"{i / 10},{i % 3},{i % 7 + 0.5}\n" for i in range(50)))
    with pytest.raises(LabelRefused) as refused:
        drafting.infer(path, "MEDV", "b")
    message = str(refused.value)
    assert "line 1 (506,3) looks like a count or title line" in message, message
    assert "the header seems to be on line 2 (CRIM, ZN, MEDV): remove line 1" in message
    assert "have no name" not in message and "\n" not in message


def test_whole_numbers_written_with_leading_zeros_are_codes(tmp_path):
    """A zip code ('00501') is a name, not an amount, however many values it has; the same
    numbers written without the zeros stay an amount."""
    rng = random.Random(7)
    zips = [f"{rng.randrange(100, 99999):05d}" for _ in range(600)]
    label = [rng.choice(["a", "b"]) for _ in range(600)]
    x = [round(rng.random(), 3) for _ in range(600)]
    for folder in ("p", "n"):
        (tmp_path / folder).mkdir()
    padded = {c.name: c for c in drafted(tmp_path / "p", {"zip": zips, "x": x, "label": label})
              .columns}["zip"]
    assert padded.type == "categorical_int" and "leading zeros" in padded.reason
    plain = {c.name: c for c in drafted(tmp_path / "n", {"zip": [str(int(z)) for z in zips],
                                                          "x": x, "label": label}).columns}["zip"]
    assert plain.type == "int"


def test_dates_and_numbers_written_as_text_are_flagged_with_what_to_write(tmp_path):
    """Dates and formatted numbers would be vocabularies that never match a new file's values
    (a user's tour: signup dates, '$3,342.30', '15%', '160,59'); plain categories stay."""
    rng = random.Random(11)
    n = 400
    table = {
        "signup": [f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(n)],
        "seen": [f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2024 {rng.randint(0, 23)}:15"
                 for _ in range(n)],
        "fee": [f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(10, 99)}"
                for _ in range(n)],
        "discount": [f"{rng.choice([5, 10, 15, 20])}%" for _ in range(n)],
        "size": [f"{rng.randint(100, 200)},{rng.randint(10, 99)}" for _ in range(n)],
        "plan": [rng.choice(["basic", "pro", "team"]) for _ in range(n)],
        "label": [rng.choice(["a", "b"]) for _ in range(n)],
    }
    columns = by_name(drafted(tmp_path, table))
    for name, said in (("signup", "dates"), ("seen", "dates"), ("fee", "written as text"),
                       ("discount", "written as text"), ("size", "decimal comma")):
        column = columns[name]
        assert column.role == "ignore" and column.flagged, name
        assert column.reason.startswith(f"REVIEW: {said}") or said in column.reason, column
    assert columns["plan"].role == "feature" and columns["plan"].type == "categorical"


def test_whole_numbers_beside_decimal_commas_are_numbers_written_with_a_decimal_comma(tmp_path):
    """Penguins' bill_depth_mm written '18,7' has whole values ('18', 14% of them): counted as
    plain text they kept the decimal-comma share at 86%, under 90%, and the column was drafted
    a vocabulary of 80 values. Thousands written '1,234' beside '567' stay thousands."""
    rng = random.Random(12)
    n = 400
    depth = [rng.randint(13, 21) if rng.random() < 0.1 else rng.randint(130, 215) / 10
             for _ in range(n)]
    table = {
        "depth": [f"{d:g}".replace(".", ",") for d in depth],
        "price": [f"{p:,}" for p in (rng.randint(100, 5000) for _ in range(n))],
        "plan": [rng.choice(["basic", "pro", "team"]) for _ in range(n)],
        "label": [rng.choice(["a", "b"]) for _ in range(n)],
    }
    whole = sum(1 for v in table["depth"] if "," not in v)
    assert 0.1 < whole / n < 0.2  # kept the decimal-comma share below 90%
    columns = by_name(drafted(tmp_path, table))
    assert columns["depth"].role == "ignore" and columns["depth"].flagged
    assert columns["depth"].reason.startswith("REVIEW: numbers written with a decimal comma ('")
    assert "," in columns["depth"].reason.split("'")[1]  # the example shows a comma
    assert columns["price"].reason.startswith("REVIEW: numbers written as text"), \
        columns["price"]


@pytest.mark.parametrize("proposed, trivial, gate", [
    (0.8672, 0.5, 0.86),  # rounded down to 0.01, as before
    (0.2148, 0.214, 0.215),  # R's Vocab: 0.21 would let the commonest class through
    (0.2168, 0.214, 0.216),  # 0.01 reaches below the trivial figure: 0.001 does not
    (0.5, 0.5, 0.501),  # no lift at all (AUC): just above guessing
    (0.0064, 0.0, 0.006),  # regression: a small improvement over the mean
    (0.0, 0.0, 0.001),  # a ridge no better than the mean
])
def test_a_proposed_minimum_is_never_met_by_the_trivial_baseline(proposed, trivial, gate):
    assert gate_proposal.above_trivial(proposed, trivial) == gate


def test_a_gate_just_above_guessing_is_written_with_its_third_decimal(tmp_path):
    # Features that carry nothing: the logistic regression is no better than the commonest
    # class, so the gate is 0.001 above that class's share, and the spec and the summary must
    # say 0.xx1, not the 0.xx a two-decimal format printed (below the commonest class).
    rng = random.Random(9)
    rows = 1500
    columns = {"a": [round(rng.gauss(0, 1), 3) for _ in range(rows)],
               "b": [rng.choice("pqrs") for _ in range(rows)],
               "label": [rng.choices("vwxyz", weights=[3, 2, 2, 2, 1])[0] for _ in range(rows)]}
    draft = drafted(tmp_path, columns)
    gates = draft.gates
    assert gates.minimum > gates.majority and round(gates.minimum, 3) == gates.minimum
    assert round(gates.minimum, 2) != gates.minimum  # the case a two-decimal format broke
    text = spec_writer.render(draft, "table.csv", tmp_path / "table.csv")
    (tmp_path / "spec.yaml").write_text(text)
    assert load_spec(tmp_path / "spec.yaml").gates.min_accuracy == gates.minimum


def test_two_valued_whole_numbers_are_numbers_and_may_still_slice(tmp_path):
    """An indicator (0/1) or a two-value code (1/2) is drafted `int`: the same to the model as
    a two-entry vocabulary, without the vocabulary's tf.Transform analyzer (a wide table of
    indicators spent minutes on them). With no text column it may still be the slicing column."""
    rng = random.Random(3)
    columns = {"flag": [rng.choice([0, 1]) for _ in range(ROWS)],
               "sex": [rng.choice([1, 2]) for _ in range(ROWS)],
               "hour": [rng.randrange(24) for _ in range(ROWS)],
               "size": [round(rng.gauss(10, 3), 2) for _ in range(ROWS)]}
    columns["label"] = [int(s + 2 * f + rng.gauss(0, 2) > 11)
                        for s, f in zip(columns["size"], columns["flag"])]
    c = by_name(draft := drafted(tmp_path, columns))
    assert (c["flag"].type, c["flag"].role) == (ds.INT, ds.FEATURE)
    assert c["flag"].reason.startswith("two whole numbers (0 and 1): an indicator")
    assert (c["sex"].type, c["sex"].reason[:27]) == (ds.INT, "two whole numbers (1 and 2)")
    assert c["hour"].type == ds.CATEGORICAL_INT  # more than two: still codes
    assert draft.slice_by == "flag"  # the most even of the whole-number columns of 2-12 values


def test_row_numbers_are_identifiers_by_name_or_when_they_count_up_but_for_a_restart(tmp_path):
    """R's `rownames` in any order, pandas' `Unnamed: 0`, and a row number that restarts once
    (a file concatenated from two sorted parts, as modeldata's grants_other) are identifiers; a
    distinct whole number on every row in no order, with no such name, stays an amount."""
    rng = random.Random(5)
    order = list(range(1, ROWS + 1))
    rng.shuffle(order)
    restarted = list(range(5000, 5000 + ROWS // 2)) + list(range(1, 1 + ROWS - ROWS // 2))
    amounts = rng.sample(range(10_000, 10_000_000), ROWS)
    columns = {"rownames": order, "Unnamed: 0": order[::-1], "line": restarted,
               "price_cents": amounts,
               "size": [round(rng.gauss(10, 3), 2) for _ in range(ROWS)]}
    columns["label"] = [int(s + rng.gauss(0, 2) > 10) for s in columns["size"]]
    c = by_name(drafted(tmp_path, columns))
    for name in ("rownames", "Unnamed: 0"):
        assert (c[name].role, c[name].reason) == (
            ds.IGNORE, "a different whole number on every row and its name says id: an "
                       "identifier"), name
    assert (c["line"].role, c["line"].reason) == (
        ds.IGNORE, "a different whole number on every row and it counts up row by row: an "
                   "identifier")
    assert (c["price_cents"].role, c["price_cents"].type) == (ds.FEATURE, ds.INT)


def _day(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(2005, 2015), rng.randint(1, 12), rng.randint(1, 28)


def test_days_in_every_common_layout_are_dates_with_their_order_named(tmp_path):
    """Rule 3b reads a day month first, day first or year first, with or without a time, by
    month name, and a period of two days (breaches' Date_of_Breach: '10/16/2009' on 86% of its
    rows, '06/15/2012 - 10/01/2012' on the rest); the order is the one a day above 12 shows.
    Look-alikes that are no real day stay what they are."""
    rng = random.Random(12)
    n = 400
    days = [_day(rng) for _ in range(n)]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    table = {
        "breach": [f"{m}/{d}/{y}" if i % 7 else f"{m:02d}/{d:02d}/{y}-{m:02d}/{d:02d}/{y + 1}"
                   for i, (y, m, d) in enumerate(days)],
        "seen_eu": [f"{d:02d}.{m:02d}.{y} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
                    for y, m, d in days],
        "posted": [f"{y}/{m:02d}/{d:02d}" for y, m, d in days],
        "stamped": [f"{m}/{d}/{y % 100:02d} {rng.randint(1, 12)}:05 PM" for y, m, d in days],
        "named": [f"{d}-{months[m - 1]}-{y}" for y, m, d in days],
        "small_days": [f"{m}/{rng.randint(1, 12)}/{y}" for y, m, _ in days],
        "code": [f"{rng.randint(10, 99)}/{rng.randint(32, 99)}/{rng.randint(10, 99)}"
                 for _ in range(n)],  # no month 32 to 99, no such day: codes
        "version": [f"{rng.randint(1, 3)}.{rng.randint(1, 9)}.{rng.randint(10, 12)}"
                    for _ in range(n)],
        "label": [rng.choice(["a", "b"]) for _ in range(n)],
    }
    columns = by_name(drafted(tmp_path, table))
    for name, layout in (("breach", "month/day/year"), ("seen_eu", "day/month/year"),
                         ("posted", "year-month-day"), ("stamped", "month/day/year"),
                         ("named", "the month by name"),
                         ("small_days", "month/day/year or day/month/year")):
        column = columns[name]
        assert (column.role, column.flagged) == (ds.IGNORE, True), (name, column.reason)
        assert column.reason.startswith(f"REVIEW: dates ({layout}"), (name, column.reason)
        assert "derive numbers from them" in column.reason
    for name in ("code", "version"):
        assert "dates" not in columns[name].reason, (name, columns[name].reason)


def test_long_text_is_free_text_however_often_it_repeats(tmp_path):
    """Rule 5: six 40-word descriptions, each copied onto a hundred rows, are free text, not a
    vocabulary of six; category names of a few words repeated as often stay a vocabulary."""
    rng = random.Random(13)
    words = ["the", "covered", "entity", "laptop", "stolen", "notified", "encryption",
             "employees", "records", "office", "policy", "breach", "investigation"]
    descriptions = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(6)]
    titles = ["Getting Timely Care, Appointments, and Information",
              "How Well Providers Communicate", "Patient's Rating of Provider",
              "Access to Specialists", "Health Promotion and Education",
              "Shared Decision Making"]
    table = {"description": [descriptions[i % 6] for i in range(600)],
             "measure": [titles[rng.randrange(6)] for _ in range(600)],
             "size": [rng.gauss(0, 1) for _ in range(600)]}
    table["label"] = [int(s + rng.gauss(0, 1) > 0) for s in table["size"]]
    columns = by_name(drafted(tmp_path, table))
    description = columns["description"]
    assert description.role == ds.IGNORE, description.reason
    assert description.reason.startswith("free text (40.0 words per value, 6 distinct on 600 "
                                         "rows)"), description.reason
    assert "even where values repeat" in description.reason
    assert (columns["measure"].role, columns["measure"].type) == (ds.FEATURE, ds.CATEGORICAL)


def _with_rare_class(rows: int = 300) -> dict[str, list]:
    rng = random.Random(14)
    size = [rng.gauss(0, 1) for _ in range(rows)]
    return {"size": size + [0.1], "kind": [("A" if s > 0 else "B") for s in size] + ["C"]}


def test_a_class_of_one_row_is_named_with_what_the_split_does_to_it(tmp_path):
    """A class whose rows all fall in one split cannot be both trained on and evaluated: init
    says which split holds it (the ExampleGen's, hash_split), what follows, and what to do, in
    one line and in the spec's classes comment."""
    draft = drafted(tmp_path, _with_rare_class(), label="kind")
    rows = draft.table.column("kind")
    split = hash_split.splits(draft.table.sample, draft.table.header, draft.table.types, 0.7)
    where = "train" if split[rows.index("C")] == hash_split.TRAIN else "eval"
    assert draft.one_split == (drafting.OneSplitClass("C", 1, where),)
    (line,) = drafting.one_split_warnings(draft)
    assert line.startswith(f"class 'C' (1 row) is in the {where} split only: "), line
    assert line.endswith("add rows of it, merge it into another class, or drop its rows, then "
                         "run init again")
    spec_text = spec_writer.render(draft, "table.csv", "table.csv")
    classes = next(x for x in spec_text.splitlines() if x.startswith("classes:"))
    assert f"REVIEW: class 'C' (1 row) is in the {where} split only" in classes


@pytest.mark.parametrize("in_sample, split, said", [
    ((1, 0), "train", "in the train split only: the model trains on such a class, but no eval "
                      "row measures it"),
    ((0, 2), "eval", "in the eval split only: the model never trains on such a class"),
    ((0, 0), "", "in one split only (which is not known: its row is not in init's sample)"),
])
def test_which_split_a_rare_class_is_in_decides_the_warning(in_sample, split, said):
    """Counted on the sample's rows as the pipeline splits them; a class of one row the sample
    of a larger file lacks is in one split all the same; a class in both splits is no case."""
    from pipeline.dataset_init.task import Task

    counts = {"A": 50, "B": 40, "C": max(1, sum(in_sample))}
    task = Task(ds.MULTICLASS, ("A", "B", "C"), ds.CATEGORICAL, "three", counts)
    train, evaluated = in_sample
    y = np.array([0] * 50 + [1] * 40 + [2] * (train + evaluated))
    s = np.array([hash_split.TRAIN, hash_split.EVAL] * 45 + [hash_split.TRAIN] * train
                 + [hash_split.EVAL] * evaluated)
    found = drafting._one_split_classes(task, y, s)
    assert found == (drafting.OneSplitClass("C", counts["C"], split),)
    draft = drafting.DatasetDraft("t", "kind", task, (), "", "", None, None, one_split=found)
    (line,) = drafting.one_split_warnings(draft)
    assert said in line and f"'C' ({counts['C']} row" in line
