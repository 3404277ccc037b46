"""Settings: one set of defaults, every field reachable from the command line with help text."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from pipeline.config.settings import Settings, from_args


def test_cli_overrides_only_what_is_given():
    settings = from_args(["--dataset", "penguins", "--epochs", "3", "--beam-args=--a=1",
                          "--beam-args=--b=2"])
    assert (settings.dataset, settings.epochs) == ("penguins", 3)
    assert settings.beam_args == ("--a=1", "--b=2")
    assert settings.learning_rate == Settings().learning_rate


def test_outputs_are_per_dataset(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    for path in (settings.pipeline_root, settings.metadata_path, settings.serving_dir,
                 settings.log_path):
        assert tmp_path / "penguins" in path.parents


def test_beam_args_default_to_multi_processing_on_every_core():
    args = Settings().beam_pipeline_args()
    assert "--direct_running_mode=multi_processing" in args
    assert any(a.startswith("--direct_num_workers=") and not a.endswith("=0") for a in args)


def test_bad_beam_mode_is_rejected():
    with pytest.raises(SystemExit):
        from_args(["--beam-mode", "warp"])


def test_help_lists_every_setting():
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for field in dataclasses.fields(Settings):
        assert "--" + field.name.replace("_", "-") in out
    assert "Adam learning rate" in out
