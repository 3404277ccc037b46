"""Dataset specs: the only place column names live.

A spec is a YAML file beside its CSV (``data/<name>/spec.yaml``). Pipeline code, module code and
the evaluation config read every column name from it, so adding a dataset means writing a spec,
not editing code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any, Mapping

import yaml

# Feature types the preprocessing understands; see components/transform/preprocessing.py for what each does.
FLOAT = "float"  # numeric, z-scored, missing values imputed with the mean
INT = "int"  # integer numeric, treated like float
CATEGORICAL = "categorical"  # string, vocabulary with OOV buckets
CATEGORICAL_INT = "categorical_int"  # integer code (hour, area id): vocabulary over its values
FEATURE_TYPES = (FLOAT, INT, CATEGORICAL, CATEGORICAL_INT)
NUMERIC_TYPES = (FLOAT, INT)

FEATURE, LABEL, IGNORE = "feature", "label", "ignore"
ROLES = (FEATURE, LABEL, IGNORE)

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
CLASSIFICATION_TASKS = (BINARY, MULTICLASS)

TRANSFORMED_SUFFIX = "_xf"


class SpecError(ValueError):
    """A dataset spec that cannot be used; the message names the file and the field."""


# The blessing gates a spec may set in its optional `gates:` block, per task. Each key is also
# the name of a Settings field and, with dashes, a command-line flag (--min-auc): a flag given
# on the command line wins over the spec, and a gate neither sets takes the settings' default
# (pipeline/config/settings.py, Settings.gate).
GATE_KEYS = {
    BINARY: ("min_auc", "max_metric_drop"),
    MULTICLASS: ("min_accuracy", "max_metric_drop"),
    REGRESSION: ("max_rmse", "min_improvement_over_mean", "max_rmse_increase"),
}
GATE_RANGES = {"min_auc": (0.0, 1.0), "min_accuracy": (0.0, 1.0), "max_metric_drop": (0.0, 1.0),
               "max_rmse": (0.0, float("inf")), "min_improvement_over_mean": (0.0, 1.0),
               "max_rmse_increase": (0.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class Gates:
    """The `gates:` block: None where the spec leaves a gate out."""
    min_auc: float | None = None  # binary: AUC on the eval split the model must reach
    min_accuracy: float | None = None  # multiclass: accuracy the model must reach
    # How far the gated metric may fall below the champion's and still bless.
    max_metric_drop: float | None = None
    # regression (docs/regression.md): RMSE on the eval split, in the label's units, at most this
    max_rmse: float | None = None
    # RMSE at least this fraction below predicting the training mean (0.2: 20% lower)
    min_improvement_over_mean: float | None = None
    # RMSE at most this fraction above the champion's (0.01: 1% worse still blesses)
    max_rmse_increase: float | None = None

    def get(self, key: str) -> float | None:
        return getattr(self, key)


# The optional `drift:` block (docs/scoring.md): how far a new file (`make score`) may drift from
# the champion's training data, and a new drop (`make pipeline`) from the last successful run's,
# before it is reported; columns listed as critical stop the run instead. TFDV's comparators:
# L-infinity distance for categorical columns, approximate Jensen-Shannon divergence for numeric
# ones and integer codes (whose statistics are numeric: L-infinity reads 0 there).
DRIFT_DEFAULTS = {"l_infinity": 0.1, "jensen_shannon": 0.1, "row_count_change": 0.5}
# Drift is not judged when either side of a comparison (the file or the new drop, or the
# baseline's split) has fewer rows than this: no column is reported drifted and no critical
# column stops the run (the data contract still checks every row). The rule: over n rows,
# sampling alone moves a share (a text category's, or one of the 10 quantile buckets' that the
# numeric comparison uses) by up to 1.96 * sqrt(p * (1 - p) / n) in 19 comparisons of 20, most
# at p = 0.5; that stays within the default thresholds (0.1) from n = (1.96 * 0.5 / 0.1)**2 = 96,
# rounded up to 100. Jensen-Shannon over 10 buckets alone would need fewer (chi-square(9) at 95%
# / (8 n ln 2) <= 0.1 from 31 rows; TFDV's approximate divergence on n uniform values against
# 20,000 read 0.13 at 30 rows, 0.09 at 50, 0.04 at 100 in 19 of 20 samples), and 5 rows read
# 0.3 to 0.8 on every numeric column of a table drawn from its own training data.
DRIFT_MIN_ROWS: int = 100


@dataclasses.dataclass(frozen=True)
class Drift:
    """The `drift:` block, with the defaults above where the spec leaves a key out."""
    l_infinity: float = DRIFT_DEFAULTS["l_infinity"]  # categorical columns
    jensen_shannon: float = DRIFT_DEFAULTS["jensen_shannon"]  # numeric columns
    # Training drops only: the row count may change by this fraction of the last run's.
    row_count_change: float = DRIFT_DEFAULTS["row_count_change"]
    critical: tuple[str, ...] = ()  # drift in these columns stops the run
    columns: tuple[tuple[str, float], ...] = ()  # per-column thresholds, over the two above

    def threshold(self, column: str, comparator: str) -> float:
        """The column's own threshold, else the one of its comparator (l_infinity for text
        categories, jensen_shannon for numbers: components/score/drift.py)."""
        own = dict(self.columns).get(column)
        return own if own is not None else getattr(self, comparator)


# Column names as they are become TensorFlow names only when they are plain lower-case
# identifiers. Anything else a CSV header can hold (spaces, dots, slashes, non-ASCII letters, a
# leading digit, upper case) gets a TF name: an ASCII slug plus a hash of the original, so it is
# deterministic, valid as a Keras layer / TF name scope / vocabulary file name, and two names
# that differ only in case (or slug the same) stay apart, also on case-insensitive file systems.
_PLAIN_TF_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


def tf_name(name: str) -> str:
    """The TensorFlow-safe name of a column (see above); the column name itself if plain."""
    if _PLAIN_TF_NAME.fullmatch(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _SLUG_CHARS.sub("_", ascii_name.lower()).strip("_")[:40]
    if not slug or not slug[0].isalpha():
        slug = "c_" + slug if slug else "c"
    return f"{slug}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# Input names a signature cannot have: saving binds each input as a keyword argument of a
# method (Function._get_concrete_function_garbage_collected(self, *args, **kwargs)), and calling
# the loaded signature does too (ConcreteFunction.__call__(self, ...)), so an input named `self`
# stopped the Trainer with "got multiple values for argument 'self'" (Ecdat's Hmda has a column
# `self`). Every other plain name was tried and saves and serves: args, kwargs, inputs,
# training, mask, name, Python keywords (class, lambda, ...).
_UNBINDABLE_INPUTS = frozenset({"self"})


def serving_input(name: str) -> str:
    """A column's serving_raw signature input: its tf_name, except a name a signature cannot
    have (_UNBINDABLE_INPUTS), which gets a hash of itself appended as tf_name's do (`self` ->
    `self_06c604b3`)."""
    key = tf_name(name)
    if key in _UNBINDABLE_INPUTS:
        return f"{key}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return key


def vocabulary_name(name: str) -> str:
    """The file name of a categorical column's vocabulary in the Transform output."""
    return tf_name(name)


def transformed_name(name: str) -> str:
    return tf_name(name) + TRANSFORMED_SUFFIX


def bucketized_name(name: str) -> str:
    return tf_name(name) + "_bucket" + TRANSFORMED_SUFFIX


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    type: str
    role: str = FEATURE
    buckets: int = 0  # > 0: also feed quantile buckets of this numeric feature
    oov_buckets: int = 1  # categorical only: hash buckets for values not in the vocabulary
    description: str = ""
    # Numeric only: values that grow with time (a year, a timestamp), so new data comes later
    # than the training data. The drafted contract bounds it from below only, and drift does not
    # compare it (components/contract/suite_draft.py, components/score/drift.py).
    time: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def is_categorical(self) -> bool:
        return self.type in (CATEGORICAL, CATEGORICAL_INT)

    @property
    def holds_numbers(self) -> bool:
        """Its CSV values are numbers: the numeric types and integer category codes."""
        return self.is_numeric or self.type == CATEGORICAL_INT


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    csv_path: Path
    task: str
    label: str
    classes: tuple[str, ...]
    features: tuple[Feature, ...]  # every CSV column, in CSV order
    slice_by: str = ""
    description: str = ""
    spec_path: Path | None = None
    # Not in to_config(): only the Evaluator's eval config reads the gates, so changing one
    # re-runs the Evaluator alone, not Transform and the Trainer.
    gates: Gates = Gates()
    # Not in to_config() either: only the drift stages read it.
    drift: Drift = Drift()
    # Cells read as missing besides the empty one (`missing_values: [NA]`), in every column, by
    # every reader of the CSV (components/ingest/csv_format.py). In to_config() when set: the
    # ExampleGen's custom config carries it, so changing it re-runs ingestion and what follows.
    missing_values: tuple[str, ...] = ()

    # Derived views, so callers never filter by role themselves.
    @property
    def model_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.role == FEATURE)

    @property
    def label_feature(self) -> Feature:
        return next(f for f in self.features if f.name == self.label)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns the pipeline reads: model features, the label and the slicing feature."""
        return tuple(f.name for f in self.features if f.role != IGNORE or f.name == self.slice_by)

    @property
    def unread_columns(self) -> tuple[str, ...]:
        """Columns no stage reads (role ignore, not the slicing feature): a file to score may
        hold anything in them."""
        return tuple(f.name for f in self.features if f.name not in self.required_columns)

    @property
    def serving_inputs(self) -> dict[str, str]:
        """Model feature column -> its serving_raw signature input name: the tf_name, since
        TensorFlow lower-cases signature input names and replaces what is not a letter or digit
        (tensorflow/python/framework/tensor.py, sanitize_spec_name)."""
        return {f.name: serving_input(f.name) for f in self.model_features}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_regression(self) -> bool:
        """A numeric label to predict (docs/regression.md): no classes, one number out."""
        return self.task == REGRESSION

    @property
    def transformed_label(self) -> str:
        return transformed_name(self.label)

    @property
    def schema_path(self) -> Path:
        return self.directory / "schema" / "schema.pbtxt"

    @property
    def directory(self) -> Path:
        return (self.spec_path or self.csv_path).parent

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def with_csv(self, csv_path: str | Path) -> "DatasetSpec":
        """The same spec read from another CSV (a sample, a new drop of data)."""
        return dataclasses.replace(self, csv_path=Path(csv_path).resolve())

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict for TFX custom_config; module code rebuilds the spec with from_config."""
        return {
            "name": self.name,
            "task": self.task,
            "label": self.label,
            "classes": list(self.classes),
            "slice_by": self.slice_by,
            # `time` only when set: a spec without it keeps the fingerprint it had.
            "features": [{k: v for k, v in dataclasses.asdict(f).items()
                          if k != "time" or v} for f in self.features],
            # Only when set, so the fingerprint of a spec without it is what it was.
            **({"missing_values": list(self.missing_values)} if self.missing_values else {}),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "DatasetSpec":
        return cls(
            name=config["name"],
            csv_path=Path(""),
            task=config["task"],
            label=config["label"],
            classes=tuple(config["classes"]),
            features=tuple(Feature(**f) for f in config["features"]),
            slice_by=config.get("slice_by", ""),
            missing_values=tuple(config.get("missing_values", ())),
        )

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(self.to_config()).encode()).hexdigest()[:16]


def _fail(path: Path, message: str) -> SpecError:
    return SpecError(f"dataset spec {path}: {message}")


def _parse_feature(path: Path, name: str, raw: Any) -> Feature:
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise _fail(path, f"feature '{name}': expected a mapping with 'type', got {raw!r}")
    unknown = set(raw) - {"type", "role", "buckets", "oov_buckets", "description", "time"}
    if unknown:
        raise _fail(path, f"feature '{name}': unknown key(s) {sorted(unknown)}")
    ftype = raw.get("type")
    if ftype not in FEATURE_TYPES:
        raise _fail(
            path, f"feature '{name}': unknown type {ftype!r} (allowed: {', '.join(FEATURE_TYPES)})"
        )
    role = raw.get("role", FEATURE)
    if role not in ROLES:
        raise _fail(path, f"feature '{name}': unknown role {role!r} (allowed: {', '.join(ROLES)})")
    buckets = raw.get("buckets", 0)
    if not isinstance(buckets, int) or buckets < 0:
        raise _fail(path, f"feature '{name}': buckets must be a non-negative integer, got {buckets!r}")
    if buckets and ftype not in NUMERIC_TYPES:
        raise _fail(path, f"feature '{name}': buckets only apply to numeric types, not {ftype}")
    oov = raw.get("oov_buckets", 1)
    if not isinstance(oov, int) or oov < 1:
        raise _fail(path, f"feature '{name}': oov_buckets must be an integer >= 1, got {oov!r}")
    time = raw.get("time", False)
    if not isinstance(time, bool):
        raise _fail(path, f"feature '{name}': time must be true or false, got {time!r}")
    if time and ftype not in NUMERIC_TYPES:
        raise _fail(path, f"feature '{name}': time only applies to numeric types (a year, a "
                          f"timestamp), not {ftype}")
    return Feature(
        name=name, type=ftype, role=role, buckets=buckets, oov_buckets=oov,
        description=str(raw.get("description", "")), time=time,
    )


def _check_tf_names(path: Path, features: tuple[Feature, ...]) -> None:
    """Refuse what cannot work: an empty column name, or two columns whose names inside
    TensorFlow (serving inputs, vocabulary files, transformed features, buckets) would clash."""
    for f in features:
        if not f.name:
            raise _fail(path, "a feature has an empty column name: name the column in the CSV "
                              "header and the spec")
    # Two namespaces: tf_names (serving inputs, vocabulary files) and transformed features.
    # tf_names are lower case, so TensorFlow's case-insensitive name uniquing cannot bite.
    owners: dict[tuple[str, str], str] = {}  # (namespace, TF-side name) -> its column
    for f in features:
        names = [("tf", tf_name(f.name)), ("transformed", transformed_name(f.name))]
        if f.buckets:
            names.append(("transformed", bucketized_name(f.name)))
        for key in names:
            other = owners.setdefault(key, f.name)
            if other != f.name:
                raise _fail(path, f"columns '{other}' and '{f.name}' would both be called "
                                  f"'{key[1]}' inside TensorFlow; rename one of them")


def _parse_classes(path: Path, raw: Mapping, task: str, label: Feature) -> tuple[str, ...]:
    """The class list of a classification task; () for regression, whose label is a number."""
    if task == REGRESSION:
        if raw.get("classes"):
            raise _fail(path, "task 'regression' predicts a number and takes no 'classes'; "
                              "remove them, or use task binary or multiclass")
        if not label.is_numeric:
            raise _fail(path, f"task 'regression' needs a numeric label: '{label.name}' is "
                              f"{label.type}; make it {FLOAT} or {INT}")
        return ()
    if "classes" not in raw:
        raise _fail(path, f"missing required key 'classes' (task '{task}' predicts one of them; "
                          "task 'regression' predicts a number)")
    classes = raw["classes"]
    if not isinstance(classes, list) or len(classes) < 2:
        raise _fail(path, f"'classes' must list at least 2 classes, got {classes!r}")
    classes = tuple(str(c) for c in classes)
    if len(set(classes)) != len(classes):
        raise _fail(path, f"'classes' has duplicates: {list(classes)}")
    if task == BINARY and len(classes) != 2:
        raise _fail(path, f"task 'binary' needs exactly 2 classes, got {len(classes)}")
    return classes


def _parse_gates(path: Path, raw: Any, task: str) -> Gates:
    """The optional `gates:` block: only the keys the task gates on, each within its range."""
    if raw is None:
        return Gates()
    allowed = GATE_KEYS.get(task, ())
    if not isinstance(raw, Mapping):
        raise _fail(path, f"'gates' must be a mapping such as {{{allowed[0]}: 0.8}}, got {raw!r}"
                    if allowed else f"'gates' must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise _fail(path, f"gates: unknown key(s) {unknown} for task '{task}' (allowed: "
                          f"{', '.join(allowed) or 'none'})")
    values = {}
    for key, value in raw.items():
        low, high = GATE_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not low <= value <= high:
            raise _fail(path, f"gates.{key} must be a number from {low:g} to {high:g}, got "
                              f"{value!r}")
        values[key] = float(value)
    return Gates(**values)


def _drift_number(path: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise _fail(path, f"drift.{key} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _parse_drift(path: Path, raw: Any, features: tuple[Feature, ...], label: str) -> Drift:
    """The optional `drift:` block: thresholds from 0 to 1, columns the model reads and its
    label."""
    if raw is None:
        return Drift()
    if not isinstance(raw, Mapping):
        raise _fail(path, f"'drift' must be a mapping such as {{jensen_shannon: 0.1, critical: "
                          f"[column]}}, got {raw!r}")
    unknown = sorted(set(raw) - {*DRIFT_DEFAULTS, "critical", "columns"})
    if unknown:
        raise _fail(path, f"drift: unknown key(s) {unknown} (allowed: "
                          f"{', '.join([*DRIFT_DEFAULTS, 'critical', 'columns'])})")
    # The label too: a change in its class mix (or its distribution) between training drops
    # is drift (components/score/drift.py, checked_columns).
    checked = [f.name for f in features if f.role == FEATURE or f.name == label]

    def column(name: Any, where: str) -> str:
        if name not in checked:
            raise _fail(path, f"drift.{where}: {name!r} is not a feature column or the label "
                              f"(drift is checked on {', '.join(checked)})")
        return str(name)

    values: dict[str, Any] = {k: _drift_number(path, k, raw[k]) for k in DRIFT_DEFAULTS
                              if k in raw}
    critical = raw.get("critical") or []
    if not isinstance(critical, list):
        raise _fail(path, f"drift.critical must be a list of columns, got {critical!r}")
    values["critical"] = tuple(column(name, "critical") for name in critical)
    columns = raw.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise _fail(path, f"drift.columns must map a column to its threshold, got {columns!r}")
    values["columns"] = tuple((column(name, "columns"), _drift_number(path, f"columns.{name}", v))
                              for name, v in columns.items())
    return Drift(**values)


def _parse_missing_values(path: Path, raw: Any, classes: tuple[str, ...]) -> tuple[str, ...]:
    """The optional `missing_values:` list: exact cell strings (quote null, ?, -: YAML reads
    some of them as something else), none empty (an empty cell is always missing), none a class
    of the label (its rows would lose their label)."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise _fail(path, f"'missing_values' must be a list of cell strings such as [NA], got "
                          f"{raw!r}")
    values = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _fail(path, f"missing_values: {value!r} is not a cell string; quote it (YAML "
                              "reads null, ~, true, .nan unquoted as something else): \"null\"")
        value = str(value)
        if not value:
            raise _fail(path, "missing_values: an empty cell is always missing; list only other "
                              "cells")
        if value in values:
            raise _fail(path, f"missing_values: {value!r} is listed twice")
        if value in classes:
            raise _fail(path, f"missing_values: {value!r} is a class of the label; its rows "
                              "would be read as having no label")
        values.append(value)
    return tuple(values)


def load_spec(path: str | Path, *, check_csv: bool = True) -> DatasetSpec:
    """Read and validate a spec; every mistake raises SpecError naming the file and the field."""
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"dataset spec {path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise _fail(path, f"not valid YAML: {e}") from None
    if not isinstance(raw, Mapping):
        raise _fail(path, "expected a mapping at the top level")
    for key in ("name", "csv", "task", "label", "features"):
        if key not in raw:
            raise _fail(path, f"missing required key '{key}'")
    unknown = set(raw) - {"name", "csv", "task", "label", "classes", "features", "slice_by",
                          "description", "gates", "drift", "missing_values"}
    if unknown:
        raise _fail(path, f"unknown key(s) {sorted(unknown)}")

    task = raw["task"]
    if task not in TASKS:
        raise _fail(path, f"unknown task {task!r} (allowed: {', '.join(TASKS)})")
    if not isinstance(raw["features"], Mapping) or not raw["features"]:
        raise _fail(path, "'features' must be a non-empty mapping of column name to its type")
    features = tuple(_parse_feature(path, str(n), f) for n, f in raw["features"].items())
    _check_tf_names(path, features)

    label = raw["label"]
    names = [f.name for f in features]
    if label not in names:
        raise _fail(path, f"label '{label}' is missing from features (columns: {', '.join(names)})")
    labelled = [f.name for f in features if f.role == LABEL]
    if labelled != [label]:
        raise _fail(path, f"exactly the label '{label}' must have role 'label', found {labelled}")
    classes = _parse_classes(path, raw, task, next(f for f in features if f.name == label))
    if not any(f.role == FEATURE for f in features):
        raise _fail(path, "no column has role 'feature'")

    slice_by = raw.get("slice_by", "") or ""
    if slice_by and slice_by not in names:
        raise _fail(path, f"slice_by '{slice_by}' is not one of the features")

    csv_path = (path.parent / str(raw["csv"])).resolve()
    if check_csv and not csv_path.is_file():
        raise _fail(path, f"CSV path not found: {csv_path}")
    return DatasetSpec(
        name=str(raw["name"]), csv_path=csv_path, task=task, label=label, classes=classes,
        features=features, slice_by=slice_by, description=str(raw.get("description", "")),
        spec_path=path, gates=_parse_gates(path, raw.get("gates"), task),
        drift=_parse_drift(path, raw.get("drift"), features, label),
        missing_values=_parse_missing_values(path, raw.get("missing_values"), classes),
    )
