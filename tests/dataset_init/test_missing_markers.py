"""`init` and missing-value markers: columns of numbers that write a missing value as NA, ?, ...
get the markers declared as the spec's missing_values and are typed as numbers; so does a text
column's NA (?, nan, ...) when it is written unlike every other value there (R's write.csv
writes NA in every column), but a marker written like a value of some text column ('NA' beside
'EU' and 'AS': North America) is not declared for text alone, and stays a category; a marker
the label holds is never declared. palmerpenguins' raw export is the real case."""
from __future__ import annotations

import csv
import random
from pathlib import Path

import palmerpenguins
import yaml

from pipeline.config import dataset_spec as ds
from pipeline.config.dataset_spec import load_spec
from pipeline.dataset_init import draft as drafting
from pipeline.dataset_init import spec_writer

ROWS = 600
PENGUINS_RAW = Path(palmerpenguins.__file__).parent / "data" / "penguins-raw.csv"


def _table(seed: int = 3) -> dict[str, list]:
    rng = random.Random(seed)
    size = [round(rng.gauss(10, 3), 2) for _ in range(ROWS)]
    colour = [rng.choice(["red", "green", "blue"]) for _ in range(ROWS)]
    label = [int(s + {"red": 2, "green": 0, "blue": -2}[c] + rng.gauss(0, 2) > 10)
             for s, c in zip(size, colour)]
    return {"size": size, "colour": colour, "visits": [rng.randrange(500) for _ in range(ROWS)],
            "label": label}


def _write(path: Path, columns: dict[str, list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values()))
    return path


def _spec(tmp_path: Path, draft, path: Path) -> ds.DatasetSpec:
    text = spec_writer.render(draft, str(path), str(path))
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    return load_spec(tmp_path / "spec.yaml")


def _with_markers(seed: int = 3) -> dict[str, list]:
    columns = _table(seed)
    rng = random.Random(seed + 1)
    columns["size"] = ["NA" if rng.random() < 0.1 else v for v in columns["size"]]
    columns["visits"] = ["?" if rng.random() < 0.05 else v for v in columns["visits"]]
    return columns


def test_marked_numbers_are_declared_and_typed_as_numbers(tmp_path):
    path = _write(tmp_path / "t.csv", _with_markers())
    draft = drafting.infer(path, "label", "t")
    columns = {c.name: c for c in draft.columns}
    assert draft.missing_values == ("?", "NA")
    assert (columns["size"].type, columns["size"].role) == (ds.FLOAT, ds.FEATURE)
    assert columns["visits"].type == ds.INT and columns["visits"].role == ds.FEATURE
    assert "read as missing (missing_values)" in columns["size"].reason
    assert not draft.flagged
    # The table init judged is the one the pipeline will read: markers are empty cells.
    assert "NA" not in draft.table.column("size")
    assert draft.table.empty_share("size") > 0.05
    spec = _spec(tmp_path, draft, path)
    assert spec.missing_values == ("?", "NA")
    line = next(x for x in (tmp_path / "spec.yaml").read_text().splitlines()
                if x.startswith("missing_values:"))
    assert line.startswith('missing_values: ["?", NA]  # cells read as missing')


def test_numbers_on_few_rows_with_a_marker_on_the_rest_are_numbers(tmp_path):
    # R's movies table: a budget on 9% of the rows, NA on the others.
    columns = _table()
    rng = random.Random(5)
    columns["budget"] = [rng.randrange(10_000, 90_000_000) if rng.random() < 0.09 else "NA"
                         for _ in range(ROWS)]
    columns["flag"] = ["1" if i % 3 else "NA" for i in range(ROWS)]  # one number: a flag
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t")
    assert draft.missing_values == ("NA",)
    budget = next(c for c in draft.columns if c.name == "budget")
    assert (budget.type, budget.role) == (ds.INT, ds.FEATURE), budget.reason
    assert "read as missing (missing_values)" in budget.reason


def test_a_marker_like_category_of_a_text_column_stays_a_category(tmp_path):
    columns = _table()
    rng = random.Random(9)
    # Continents: NA is North America here, and no number column writes NA.
    columns["continent"] = [rng.choice(["EU", "NA", "AS"]) for _ in range(ROWS)]
    path = _write(tmp_path / "t.csv", columns)
    draft = drafting.infer(path, "label", "t")
    assert draft.missing_values == ()
    continent = next(c for c in draft.columns if c.name == "continent")
    assert (continent.type, continent.role) == (ds.CATEGORICAL, ds.FEATURE)
    assert "NA" in draft.table.column("continent")
    assert "missing_values" not in yaml.safe_load(
        spec_writer.render(draft, "t.csv", str(path)))


def test_text_columns_sharing_a_declared_marker_are_named_for_review(tmp_path):
    columns = _with_markers()
    columns["note"] = ["NA" if i % 4 else "late" for i in range(ROWS)]
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t")
    assert "NA" in draft.missing_values
    assert "also read as missing in text column(s) note (450)" in draft.missing_reason


def test_a_marker_the_label_holds_is_not_declared(tmp_path):
    # A text label (a label of numbers with NA is refused: test_inference_rules' test_refusals).
    columns = _with_markers()
    columns["label"] = ["NA" if v == 0 and i % 7 == 0 else ("yes" if v else "no")
                        for i, v in enumerate(columns["label"])]
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t")
    assert draft.missing_values == ("?",)  # NA would empty label cells
    size = next(c for c in draft.columns if c.name == "size")
    assert size.role == ds.IGNORE and size.flagged and "missing-value markers" in size.reason
    assert "NA" in draft.task.classes


def test_penguins_raw_export_gets_its_measurements_as_numbers(tmp_path):
    draft = drafting.infer(PENGUINS_RAW, "Species", "penguins_raw")
    assert draft.missing_values == ("NA",)
    columns = {c.name: c for c in draft.columns}
    measurements = ["Culmen Length (mm)", "Culmen Depth (mm)", "Flipper Length (mm)",
                    "Body Mass (g)", "Delta 15 N (o/oo)", "Delta 13 C (o/oo)"]
    for name in measurements:
        assert columns[name].role == ds.FEATURE, (name, columns[name].reason)
        assert columns[name].type in (ds.FLOAT, ds.INT), name
    assert not any("missing-value markers" in c.reason for c in draft.columns)
    spec = _spec(tmp_path, draft, PENGUINS_RAW)
    assert spec.missing_values == ("NA",)
    assert set(measurements) <= {f.name for f in spec.model_features}
    assert spec.classes == ("Adelie Penguin (Pygoscelis adeliae)",
                            "Chinstrap penguin (Pygoscelis antarctica)",
                            "Gentoo penguin (Pygoscelis papua)")


def test_nan_written_in_a_column_of_decimals_is_declared(tmp_path):
    """float() takes NaN: undeclared, the ExampleGen would write NaN values (which the
    Transform's mean would spread), not missing ones."""
    columns = _table()
    columns["size"] = ["NaN" if i % 9 == 0 else v for i, v in enumerate(columns["size"])]
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t")
    assert draft.missing_values == ("NaN",)
    size = next(c for c in draft.columns if c.name == "size")
    assert (size.type, size.role) == (ds.FLOAT, ds.FEATURE)
    assert "67 cells of 'NaN' read as missing" in size.reason
    assert "NaN" not in draft.table.column("size")


def test_a_column_with_other_text_beyond_the_sample_gets_no_declaration(tmp_path):
    """Markers are found on the sample; the whole file must then read as numbers, else they
    are not declared (the ExampleGen would still read the column as text)."""
    columns = _table()
    columns["size"] = ["NA" if i % 10 == 0 else "oops" if i == 433 else v
                       for i, v in enumerate(columns["size"])]
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t", sample_rows=100)
    assert draft.table.sampled and draft.missing_values == ()
    size = next(c for c in draft.columns if c.name == "size")
    assert size.type == ds.CATEGORICAL and size.role == ds.IGNORE


def _text_only_markers(seed: int = 7) -> dict[str, list]:
    """R's write.csv of a table whose numbers are whole: NA only in text columns (Ecdat's
    breaches: a company name, a 128-word summary and an end date, NA where there is none), and
    UCI's ? in a category."""
    columns = _table(seed)
    rng = random.Random(seed)
    columns["sex"] = [rng.choice(["male", "female", "female", "NA"]) for _ in range(ROWS)]
    columns["ended"] = [f"{rng.randint(2009, 2014)}-{rng.randint(1, 12):02d}-"
                        f"{rng.randint(1, 28):02d}" if rng.random() < 0.2 else "NA"
                        for _ in range(ROWS)]
    columns["summary"] = [" ".join(rng.choice(["laptop", "stolen", "records", "notified",
                                               "office"]) for _ in range(30))
                          if rng.random() < 0.15 else "NA" for _ in range(ROWS)]
    columns["work"] = [rng.choice(["Private", "Self-emp", "State-gov", "?"])
                       for _ in range(ROWS)]
    return columns


def test_a_marker_unlike_every_value_of_a_text_column_is_declared_end_to_end(tmp_path):
    path = _write(tmp_path / "t.csv", _text_only_markers())
    draft = drafting.infer(path, "label", "t")
    assert draft.missing_values == ("?", "NA")
    assert draft.missing_reason.startswith(
        "cells read as missing, as an empty cell is, in every column: text written with them "
        "in 4 column(s) (sex, ended, summary, work), where no other value is written like them")
    columns = {c.name: c for c in draft.columns}
    assert (columns["sex"].type, columns["sex"].role) == (ds.CATEGORICAL, ds.FEATURE)
    assert "cells of '?', 'NA' read as missing (missing_values)" in columns["sex"].reason
    assert columns["ended"].flagged and "REVIEW: dates (year-month-day" in columns["ended"].reason
    assert columns["summary"].reason.startswith("free text (30.0 words per value")
    # The table init judged is read as the pipeline reads it: the markers are empty cells, in
    # the ExampleGen's reader (table_sample reads through csv_ranges) and the contract's.
    assert "NA" not in draft.table.column("sex") and "?" not in draft.table.column("work")
    spec = _spec(tmp_path, draft, path)
    assert spec.missing_values == ("?", "NA")
    from components.ingest import csv_format

    frame = csv_format.read_frame(path, spec.missing_values)
    assert frame["sex"].isna().sum() == draft.table.empty[draft.table.header.index("sex")] > 0
    assert set(frame["work"].dropna()) == {"Private", "Self-emp", "State-gov"}


def test_a_marker_written_like_a_text_value_is_not_declared_for_text(tmp_path):
    """Declared, a marker is missing in every column: where a text column writes it like its
    own values (NA beside EU and AS), init leaves it, in every column, to the person reviewing.
    Beside a single other value it is a flag (yes or NA), as a single number is."""
    columns = _text_only_markers()
    rng = random.Random(8)
    columns["continent"] = [rng.choice(["EU", "NA", "AS"]) for _ in range(ROWS)]
    columns.pop("work")
    draft = drafting.infer(_write(tmp_path / "t.csv", columns), "label", "t")
    assert draft.missing_values == ()
    assert "NA" in draft.table.column("continent") and "NA" in draft.table.column("sex")
    flags = _table()
    flags["smoker"] = [rng.choice(["yes", "NA"]) for _ in range(ROWS)]
    draft = drafting.infer(_write(tmp_path / "f.csv", flags), "label", "f")
    assert draft.missing_values == ()
    smoker = next(c for c in draft.columns if c.name == "smoker")
    assert (smoker.type, smoker.role) == (ds.CATEGORICAL, ds.FEATURE)
