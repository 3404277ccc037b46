"""Every pipeline knob in one typed place, with CLI overrides generated from the same fields.

Defaults live only here: the CLI, the runners and the tests all start from ``Settings()``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from pipeline.dataset_spec import DatasetSpec, load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
BEAM_MODES = ("multi_processing", "in_memory", "multi_threading")


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, **extra})


@dataclasses.dataclass(frozen=True)
class Settings:
    # What to run and where.
    dataset: str = _opt("taxi", "dataset name: a folder under data_root with a spec.yaml")
    data_root: Path = _opt(REPO_ROOT / "data", "folder holding one sub-folder per dataset")
    csv: Path | None = _opt(None, "read this CSV instead of the one the spec names (same columns)")
    output_root: Path = _opt(
        REPO_ROOT / "outputs", "folder for every generated file, one sub-folder per dataset"
    )
    pipeline_name: str = _opt("csv2model", "TFX pipeline name; the dataset name is appended")

    # Data split.
    train_ratio: float = _opt(0.7, "share of rows hashed into the train split; the rest is eval")

    # Model and training.
    hidden_units: int = _opt(64, "width of each hidden Dense layer")
    hidden_layers: int = _opt(2, "number of hidden Dense relu layers")
    learning_rate: float = _opt(1e-3, "Adam learning rate")
    epochs: int = _opt(30, "maximum training epochs (early stopping may end sooner)")
    batch_size: int = _opt(128, "training batch size")
    early_stopping_patience: int = _opt(3, "epochs without eval-loss improvement before stopping")
    seed: int = _opt(42, "seed for weights, shuffling and the TF/NumPy/Python RNGs")

    # Evaluation gates.
    min_auc: float = _opt(0.93, "binary tasks: AUC the model must reach to be blessed")
    min_accuracy: float = _opt(0.9, "multiclass tasks: accuracy the model must reach to be blessed")
    max_metric_drop: float = _opt(
        0.0, "how far the gated metric may fall below the last blessed model's and still bless"
    )

    # Beam.
    beam_mode: str = _opt(
        "multi_processing", "Beam DirectRunner running mode", choices=BEAM_MODES
    )
    beam_workers: int = _opt(0, "Beam DirectRunner workers; 0 means one per core")
    beam_args: tuple[str, ...] = _opt(
        (), "extra Beam pipeline args, e.g. --beam-args=--runner=FlinkRunner (repeatable)"
    )

    # ---- derived values -------------------------------------------------------------------
    @property
    def spec_path(self) -> Path:
        return Path(self.data_root) / self.dataset / "spec.yaml"

    def load_spec(self) -> DatasetSpec:
        spec = load_spec(self.spec_path, check_csv=self.csv is None)
        return spec.with_csv(self.csv) if self.csv is not None else spec

    @property
    def full_pipeline_name(self) -> str:
        return f"{self.pipeline_name}-{self.dataset}"

    @property
    def output_dir(self) -> Path:
        return Path(self.output_root) / self.dataset

    @property
    def pipeline_root(self) -> Path:
        return self.output_dir / "pipeline_root"

    @property
    def metadata_path(self) -> Path:
        return self.output_dir / "metadata.sqlite"

    @property
    def serving_dir(self) -> Path:
        return self.output_dir / "serving"

    @property
    def log_path(self) -> Path:
        return self.output_dir / "logs" / "pipeline.log"

    def beam_pipeline_args(self) -> list[str]:
        workers = self.beam_workers or os.cpu_count() or 1
        args = [f"--direct_running_mode={self.beam_mode}", f"--direct_num_workers={workers}"]
        return args + list(self.beam_args)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One CLI option per Settings field; help text and defaults come from the field."""
    for f in dataclasses.fields(Settings):
        default = f.default
        help_text = f"{f.metadata['help']} (default: {default if default != () else 'none'})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if f.name == "beam_args":
            kwargs.update(action="append", metavar="ARG")
        elif isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (int, float)):
            kwargs["type"] = type(default)
        elif f.name in ("data_root", "output_root", "csv"):
            kwargs["type"] = Path
        parser.add_argument(_flag(f.name), **kwargs)


def from_args(args: argparse.Namespace | Sequence[str] | None = None) -> Settings:
    """Settings() with whatever the command line overrode."""
    if args is None or not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(args or [])
    names = {f.name for f in dataclasses.fields(Settings)}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    if "beam_args" in overrides:
        overrides["beam_args"] = tuple(overrides["beam_args"])
    return Settings(**overrides)
