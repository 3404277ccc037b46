"""Settings: one set of defaults, every field reachable from the command line with help text."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from pipeline.config.settings import (IN_MEMORY_MAX_BYTES, Settings, choose_beam_mode,
                                      from_args)


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


@pytest.mark.parametrize("input_bytes, cores, mode", [
    (2_000_000, 2, "in_memory"),  # the taxi sample
    (IN_MEMORY_MAX_BYTES, 8, "in_memory"),
    (IN_MEMORY_MAX_BYTES + 1, 8, "multi_processing"),
    (200_000_000, 8, "multi_processing"),  # 1.5M taxi rows
    # Two cores: two worker processes double the peak memory for ~17% of the whole run.
    (200_000_000, 2, "in_memory"),
    (200_000_000, 1, "in_memory"),  # one core: worker processes only add start-up
    (0, 2, "in_memory"),
])
def test_auto_beam_mode_is_chosen_by_input_size_and_cores(input_bytes, cores, mode):
    assert choose_beam_mode(input_bytes, cores) == mode


def _settings_for_csv(tmp_path, size: int, **changes) -> Settings:
    csv = tmp_path / "data.csv"
    with csv.open("wb") as f:
        f.truncate(size)  # sparse: only the size matters for the mode choice
    return Settings(csv=csv, **changes)


def test_auto_mode_reaches_the_beam_args(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    small = _settings_for_csv(tmp_path, 1000).beam_pipeline_args()
    assert "--direct_running_mode=in_memory" in small and "--direct_num_workers=1" in small
    big = _settings_for_csv(tmp_path, IN_MEMORY_MAX_BYTES + 1).beam_pipeline_args()
    assert "--direct_running_mode=multi_processing" in big and "--direct_num_workers=4" in big


def test_an_explicit_beam_mode_wins_over_the_input_size(tmp_path):
    settings = _settings_for_csv(tmp_path, 1000, beam_mode="multi_processing", beam_workers=3)
    assert settings.resolved_beam_mode() == "multi_processing"
    assert "--direct_num_workers=3" in settings.beam_pipeline_args()
    assert Settings().beam_mode == "auto"


def test_bad_beam_mode_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_:
        from_args(["--beam-mode", "warp"])
    assert exit_.value.code == 2  # argparse's usage error, not a crash or a success
    assert "argument --beam-mode: invalid choice: 'warp'" in capsys.readouterr().err


def test_help_lists_every_setting():
    out = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for field in dataclasses.fields(Settings):
        assert "--" + field.name.replace("_", "-") in out
    assert "Adam learning rate" in out


def test_the_stage_names_are_what_the_builder_builds(tmp_path):
    """stage_names.STAGES (what `--until`, the summary and the bench name) in the builder's order;
    not an e2e test, so `make test-fast` keeps it. The build writes no file."""
    from pipeline.config.stage_names import STAGES
    from pipeline.definition import builder

    settings = Settings(output_root=tmp_path)
    pipeline = builder.create_pipeline(settings, settings.load_spec(), write_files=False)
    assert [node.id for node in pipeline.components] == list(STAGES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ratio", ["0", "1.0", "0.004", "abc"])
def test_a_train_ratio_without_two_splits_is_refused_before_anything_runs(tmp_path, ratio):
    """Splits are 1% hash buckets: a ratio that leaves a split empty is a usage error (exit 2)
    naming the flag, and nothing is written."""
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--dataset", "penguins",
                           "--output-root", str(tmp_path / "out"), "--train-ratio", ratio],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]
    assert last.startswith("python -m pipeline run: error: argument --train-ratio: ")
    if ratio != "abc":
        assert last.endswith(f"train_ratio must be between 0.01 and 0.99, got {float(ratio)}")
    assert not (tmp_path / "out").exists()


def test_a_train_ratio_set_in_code_is_checked_when_the_pipeline_is_built(tmp_path):
    from pipeline.definition import builder

    settings = Settings(dataset="penguins", output_root=tmp_path, train_ratio=0.995)
    with pytest.raises(ValueError, match="got 0.995"):
        builder.create_pipeline(settings, settings.load_spec(), write_files=False)
    ok = Settings(dataset="penguins", output_root=tmp_path, train_ratio=0.8)
    pipeline = builder.create_pipeline(ok, ok.load_spec(), write_files=False)
    example_gen = next(c for c in pipeline.components if c.id == builder.EXAMPLE_GEN)
    splits = json.loads(example_gen.exec_properties["output_config"])["split_config"]["splits"]
    assert splits == [{"hash_buckets": 80, "name": "train"}, {"hash_buckets": 20, "name": "eval"}]


@pytest.mark.parametrize("flag", ["--hidden-units", "--epochs", "--batch-size", "--tuner-epochs"])
def test_counts_below_one_are_usage_errors(flag, capsys):
    # A Dense layer of 0 units aborted the Trainer's process (exit 134) instead of a clear error.
    with pytest.raises(SystemExit) as exit_:
        from_args([flag, "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"argument {flag}: must be at least 1, got 0")
    assert getattr(from_args([flag, "3"]), flag[2:].replace("-", "_")) == 3
