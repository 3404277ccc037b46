"""The bench's own pieces, in seconds: the scaled-data generator, the pandas baselines, the
measured pipeline run (one stage of the real CLI), the tables, and the speed targets' inputs (the
reference pipeline's penguins CSV, the breast-cancer dataset, the contract-breaking taxi CSV).
The training and serving baselines are smoke-run on the end-to-end test's pipeline run
(tests/e2e/test_pipeline_e2e.py).

The benchmark itself (`make bench`) runs pipelines for many minutes, and TFX's reference
pipeline for two; nothing here times anything or runs either."""
from __future__ import annotations

import csv
import sqlite3
import sys
import time

import pandas as pd
import pytest

from conftest import DATA, write_csv_sample
from pipeline.bench import (baselines, benchmark, breast_cancer, fixed_costs, reference_penguin,
                            targets, targets_table)
from pipeline.bench.process import measure
from pipeline.bench import report as bench_report
from pipeline.bench.scaled_csv import write_scaled_csv
from pipeline.config.dataset_spec import load_spec
from pipeline.config.settings import Settings
from pipeline.mlmd import queries


def test_scaled_csv_streams_realistic_rows(tmp_path):
    spec = Settings().load_spec()
    source = pd.read_csv(spec.csv_path)
    target = write_scaled_csv(spec, 2_500, tmp_path / "x" / "data.csv", seed=1, chunk_rows=1_000)
    scaled = pd.read_csv(target)
    assert len(scaled) == 2_500 and list(scaled.columns) == list(source.columns)
    assert not (tmp_path / "x" / "data.partial").exists()
    # categories in their observed proportions (within sampling noise), no new categories
    assert set(scaled["payment_type"].dropna()) <= set(source["payment_type"].dropna())
    assert abs((scaled["payment_type"] == "Cash").mean()
               - (source["payment_type"] == "Cash").mean()) < 0.05
    # numbers jittered, not copied, and kept inside the observed range; ints stay ints
    assert not scaled["fare"].isin(source["fare"]).all()
    for column in ("fare", "trip_start_timestamp", "pickup_latitude"):  # the schema's ranges
        assert scaled[column].dropna().between(source[column].min(), source[column].max()).all()
    assert (scaled["trip_seconds"].dropna() % 1 == 0).all()
    assert scaled["big_tipper"].isin([0, 1]).all()
    # seeded: the same seed writes the same file
    again = write_scaled_csv(spec, 2_500, tmp_path / "y" / "data.csv", seed=1, chunk_rows=1_000)
    assert again.read_bytes() == target.read_bytes()


def test_pandas_baselines_run_on_a_sample(tmp_path):
    settings = Settings()
    sample = write_scaled_csv(settings.load_spec(), 500, tmp_path / "data.csv", seed=2)
    assert baselines.pandas_statistics(sample) > 0  # seconds: only the figure is timed
    assert baselines.pandas_transform(sample, settings) > 0


def test_the_pandas_statistics_compute_what_statisticsgen_reports(tmp_path):
    from components.ingest import csv_format

    path = tmp_path / "data.csv"
    path.write_text("fare,company\n1.5,a\n,b\n0,a\n4.5,\n")
    stats = baselines.column_statistics(csv_format.read_frame(path))
    fare, company = stats["fare"], stats["company"]
    assert (fare["count"], fare["missing"], fare["zeros"]) == (3, 1, 1)
    assert (fare["mean"], fare["min"], fare["max"]) == (2.0, 0.0, 4.5)
    assert fare["std"] == pytest.approx(5.25 ** 0.5)  # sample std: (0.25 + 4 + 6.25) / 2
    assert fare["deciles"][0] == 0.0 and fare["deciles"][5] == 1.5 and fare["deciles"][10] == 4.5
    assert (company["missing"], company["distinct"], company["top"]) == (1, 2, {"a": 2, "b": 1})


def test_the_pandas_transform_computes_what_the_transform_does(tmp_path):
    """The baseline the bench compares the Transform with does the same work: z-scores with the
    mean imputed, vocabulary ids by frequency with one OOV id for missing, label ids."""
    spec = load_spec(DATA / "penguins" / "spec.yaml")
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,"
                        "body_mass_g,sex,year\n"
                        "Gentoo,Biscoe,40,18,190,3000,male,2007\n"
                        "Adelie,Biscoe,50,,200,4000,female,2008\n"
                        "Adelie,Dream,60,20,210,5000,,2008\n"
                        "Chinstrap,,,22,220,6000,male,2009\n")
    out = baselines.pandas_transformed(csv_path, spec)
    # Worked by hand, as tft.scale_to_z_score does it (the population standard deviation):
    # lengths 40, 50, 60 and a missing one imputed with their mean 50: deviations -10, 0, 10, 0,
    # variance 200 / 4 = 50, so z = -10 / sqrt(50) = -sqrt(2), 0, sqrt(2), 0.
    assert out["bill_length_mm"].tolist() == pytest.approx([-2 ** 0.5, 0.0, 2 ** 0.5, 0.0])
    assert out["bill_length_mm"].iloc[3] == 0.0
    # Depths 18, missing (-> 20), 20, 22: deviations -2, 0, 0, 2, variance 2, z = -1, 0, 0, 1
    # times sqrt(2).
    assert out["bill_depth_mm"].tolist() == pytest.approx([-2 ** 0.5, 0.0, 0.0, 2 ** 0.5])
    # Flippers 190..220: mean 205, deviations -15, -5, 5, 15, variance 500 / 4 = 125:
    # z = -3, -1, 1, 3 over sqrt(5).
    assert out["flipper_length_mm"].tolist() == pytest.approx(
        [-3 / 5 ** 0.5, -1 / 5 ** 0.5, 1 / 5 ** 0.5, 3 / 5 ** 0.5])
    assert out["island"].tolist() == [0, 0, 1, 2]  # Biscoe twice, Dream, missing -> OOV
    assert out["sex"].tolist() == [0, 1, 2, 0]  # male twice, female, missing -> OOV
    assert out["species"].tolist() == [spec.classes.index(c)
                                       for c in ("Gentoo", "Adelie", "Adelie", "Chinstrap")]


def test_short_fits_are_timed_in_three_interleaved_rounds_long_ones_in_one():
    """The e2e smoke (tests/e2e/test_pipeline_e2e.py) times one round to stay cheap; the bench
    itself repeats short fits."""
    assert baselines.interleaved_rounds(10_000) == 3
    assert baselines.interleaved_rounds(baselines.ROUNDS_UP_TO) == 3
    assert baselines.interleaved_rounds(baselines.ROUNDS_UP_TO + 1) == 1


def test_markdown_table_names_every_figure():
    run = {"wall_seconds": 10.0, "peak_rss_mb": 900.0,
           "stages": {"StatisticsGen": 2.0, "Transform": 4.0},
           "stage_peak_rss_mb": {"StatisticsGen": 700.0, "Transform": 1200.0},
           "states": {}, "stdout": None}
    report = {
        "machine": {"cores": "2", "memory_gib": "24", "cpu": "x86_64", "python": "3.10"},
        "sizes": {"15002": {"rows": 15002, "run": run, "beam_mode": "in_memory",
                            "other_mode": {"mode": "multi_processing", **run},
                            "training": {"trainer_examples_per_s": 1000.0,
                                         "keras_examples_per_s": 2000.0, "ratio": 0.5,
                                         "input_ratio": 1.25},
                            "pandas_statistics_s": 1.0, "pandas_transform_s": 1.0}},
        "cached_rerun_s": 9.0, "rows100_run_s": 60.0,
        "serving": {"http_1_rows": {"p50_ms": 5.0, "p99_ms": 9.0, "rps": 150.0}},
    }
    table = bench_report.markdown(report)
    assert "Speed targets" not in table  # a scaling-only report has no targets section
    for text in ("2 cores, 24 GiB", "| 15,002 | Transform | 4.0 | 3,750 | 1,200 MB | 4.0 |",
                 "| **whole run** | 10.0 | | 900 MB |", "| 0.50 | 1.25 |",
                 "every stage cached) takes 9.0 s",
                 "| http 1 rows | 5.0 | 9.0 | 150.0 |", "multi_processing at 15,002",
                 "| Transform | 4.0 | 266.6 |", "| Beam mode (auto) | in_memory |"):
        assert text in table, text


def test_seconds_per_million_rows_beam_mode_and_peak_at_each_size():
    def size(rows, mode, transform, peak):
        return {"rows": rows, "beam_mode": mode, "run": {
            "wall_seconds": 2 * transform, "peak_rss_mb": peak,
            "stages": {"Transform": transform, "Pusher": 0.01}}}

    report = {"sizes": {"150000": size(150_000, "in_memory", 30.0, 2000.0),
                        "1500000": size(1_500_000, "multi_processing", 150.0, 2400.0)}}
    lines = bench_report.per_million_rows(report)
    assert lines[0] == ("| stage | s at 150,000 | s per 1M rows | s at 1,500,000 | "
                        "s per 1M rows |")
    assert "| Transform | 30.0 | 200.0 | 150.0 | 100.0 |" in lines
    assert "| **whole run** | 60.0 | 400.0 | 300.0 | 200.0 |" in lines
    assert not any(line.startswith("| Pusher") for line in lines)  # too short at every size
    assert "| Beam mode (auto) | in_memory |  | multi_processing |  |" in lines
    assert "| peak RSS | 2,000 MB |  | 2,400 MB |  |" in lines
    assert lines[-1].startswith("Peak RSS at 1,500,000 rows is 1.20x the peak at 150,000")


@pytest.mark.e2e  # the real CLI through TFX (up to CsvExampleGen)
def test_measured_run_times_each_stage_and_its_memory(tmp_path):
    """The real CLI on 100 rows, stopped after CsvExampleGen with --until (about 20 s)."""
    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "data.csv", rows=100)
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp_path / "out",
                        beam_mode="in_memory", until="CsvExampleGen")
    run = benchmark.run_pipeline(settings)
    assert run.states == {"CsvExampleGen": "ran"}, run.stdout
    assert "until CsvExampleGen" in run.stdout
    assert run.stages["CsvExampleGen"] > 0 and run.wall_seconds > run.stages["CsvExampleGen"]
    # A process that has imported TensorFlow holds well over 100 MB; the run's peak covers it.
    assert 100 < run.stage_peak_rss_mb["CsvExampleGen"] <= run.peak_rss_mb
    with queries.open_store_context(settings.metadata_path) as store:
        ran = {ctx.name.split(".")[-1] for ctx in store.get_contexts_by_type("node")
               if store.get_executions_by_context(ctx.id)}
    assert ran == {"CsvExampleGen"}


def test_measured_run_that_fails_says_why(tmp_path):
    settings = Settings(dataset="taxi", csv=tmp_path / "missing.csv", output_root=tmp_path)
    with pytest.raises(RuntimeError, match="missing.csv: file not found"):
        benchmark.run_pipeline(settings)


def test_cost_split_separates_start_up_from_per_row_time():
    def size(rows, transform, trainer):
        return {"rows": rows, "run": {"stages": {
            "Transform": transform, "Trainer": trainer, "Pusher": 0.1}}}

    report = {"sizes": {"10000": size(10_000, 12.0, 5.0), "110000": size(110_000, 22.0, 45.0)}}
    split = bench_report.cost_split(report)
    assert split["Transform"] == pytest.approx((11.0, 10.0))
    assert split["Trainer"] == pytest.approx((1.0, 40.0))
    assert "Pusher" not in split  # too short at every size to say anything
    assert bench_report.cost_split({"sizes": {"10000": size(10_000, 12.0, 5.0)}}) == {}


# ---- the speed targets' inputs and table ----------------------------------------------------

def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_penguins_become_the_reference_pipelines_csv(tmp_path):
    source = DATA / "penguins" / "data.csv"
    target = tmp_path / "labelled" / "penguins.csv"
    counts = reference_penguin.to_reference_csv(source, target)
    ours, theirs = _read(source), _read(target)
    with open(target) as f:
        assert f.readline().strip() == ",".join(reference_penguin.REFERENCE_COLUMNS)
    measured = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
    complete = [r for r in ours if all(r[c] for c in ("species", *measured))]
    assert counts == {"rows": len(complete), "dropped": len(ours) - len(complete), "classes": 3}
    assert len(theirs) == len(complete) == 342  # the two penguins measured not at all
    assert all(all(v != "" for v in row.values()) for row in theirs)
    classes = {"Adelie": "0", "Chinstrap": "1", "Gentoo": "2"}  # sorted names -> 0/1/2
    for mine, converted in zip(complete, theirs):
        assert converted == {"species": classes[mine["species"]],
                             "culmen_length_mm": mine["bill_length_mm"],
                             "culmen_depth_mm": mine["bill_depth_mm"],
                             "flipper_length_mm": mine["flipper_length_mm"],
                             "body_mass_g": mine["body_mass_g"]}


def test_reference_conversion_drops_gaps_and_orders_classes_by_name(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("island,species,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,"
                      "sex\n"
                      "Dream,Gentoo,1,2,3,4,male\n"
                      "Dream,Adelie,5,6,7,8,\n"         # a gap elsewhere is kept
                      "Dream,Chinstrap,9,,11,12,male\n"  # a gap in a kept column is dropped
                      "Biscoe,Chinstrap,13,14,15,16,female\n")
    counts = reference_penguin.to_reference_csv(source, tmp_path / "out.csv")
    assert counts == {"rows": 3, "dropped": 1, "classes": 3}
    assert (tmp_path / "out.csv").read_text() == (
        "species,culmen_length_mm,culmen_depth_mm,flipper_length_mm,body_mass_g\n"
        "2,1,2,3,4\n0,5,6,7,8\n1,13,14,15,16\n")


def test_reference_run_names_the_examples_files_and_fetches_nothing(tmp_path):
    folder = reference_penguin.example_dir()
    assert (folder / "penguin_pipeline_local.py").is_file()
    assert (folder / "penguin_utils_keras.py").is_file()
    assert reference_penguin.beam_args(2) == ["--direct_running_mode=multi_processing",
                                              "--direct_num_workers=2"]
    env = reference_penguin.run_environment(tmp_path, base={"PATH": "/bin"})
    assert env["PIP_NO_INDEX"] == "1" and env["TMPDIR"] == str(tmp_path.resolve() / "tmp")
    assert (tmp_path / "tmp").is_dir()


def test_breast_cancer_dataset_has_a_spec_the_pipeline_accepts(tmp_path):
    from pipeline.inputs.csv_preflight import check_csv

    spec_path = breast_cancer.write_dataset(tmp_path)
    assert spec_path == tmp_path / "breast_cancer" / "spec.yaml"
    spec = load_spec(spec_path)  # checks the CSV is there too
    settings = Settings(dataset="breast_cancer", data_root=tmp_path)
    assert settings.load_spec() == spec
    assert spec.task == "binary" and spec.label == "diagnosis" and spec.classes == ("0", "1")
    assert len(spec.features) == 32 and len(spec.model_features) == 30
    assert all(f.is_numeric for f in spec.features)
    assert spec.feature("id").role == "ignore"
    assert "mean_concave_points" in spec.column_names  # sklearn: "mean concave points"
    assert all(" " not in name for name in spec.column_names)
    frame = pd.read_csv(spec.csv_path)
    assert list(frame.columns) == list(spec.column_names)
    assert len(frame) == 569 and frame.notna().all().all()
    assert set(frame["diagnosis"]) == {0, 1} and frame["id"].is_unique
    check_csv(spec)  # what the CLI refuses before TFX starts: nothing


@pytest.mark.e2e  # Great Expectations over the 15,002-row taxi CSV (~6 s)
def test_contract_breaking_csv_breaks_the_chosen_critical_expectation(tmp_path):
    from components.contract import example_frames, suite_loading, suite_validation

    spec = Settings().load_spec()
    expectation = targets.contract_expectation(suite_loading.suite_path(spec))
    assert (expectation["column"], expectation["min_value"]) == ("fare", 0)
    target = tmp_path / "data.csv"
    variant = targets.write_contract_breaking_csv(spec.csv_path, target, expectation)
    source, broken = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in
                      (spec.csv_path, target))
    # Only that column changed, on every 10th row that has a value.
    assert (source.drop(columns="fare") == broken.drop(columns="fare")).all().all()
    changed = source["fare"] != broken["fare"]
    assert changed.sum() == variant["changed"] > 0
    assert (source.loc[changed, "fare"] != "").all()
    # Out of the expectation's bounds on more rows than its `mostly` allows.
    fares = pd.to_numeric(broken["fare"].replace("", None)).dropna()
    outside = ~fares.between(expectation["min_value"], expectation["max_value"])
    assert outside.mean() == pytest.approx(variant["share_out_of_range"])
    assert outside.mean() > 1 - expectation["mostly"] + 0.05
    # The real validator agrees: that expectation, and only it, fails.
    suite = suite_loading.load_suite(suite_loading.suite_path(spec), spec)
    outcome = suite_validation.validate(
        suite, (("all", frame) for frame in example_frames.csv_frames(target, spec)))
    failed = [(r.check.type, r.check.column, r.check.severity)
              for r in outcome.results if not r.success]
    assert failed == [(targets.CONTRACT_EXPECTATION, "fare", "critical")]


def test_evaluator_figures_come_from_the_evaluator_line_only():
    stdout = ("  Trainer                     ran        19.1s  val accuracy 0.898 (epoch 2 of 5)\n"
              "  Evaluator                   ran        17.4s  AUC 0.948, accuracy 0.898, "
              "blessed yes\n")
    assert targets.evaluator_figures(stdout) == {"auc": 0.948, "accuracy": 0.898,
                                                 "blessed": True}
    assert targets.evaluator_figures(
        "  Evaluator    ran    6.0s  accuracy 1.000, blessed no\n") == {
        "accuracy": 1.0, "blessed": False}
    assert targets.evaluator_figures("error: data contract broken\n") == {}


def _fake_targets(**changes):
    def run(wall, **more):
        return {"wall_s": wall, "returncode": 0, "stages": {}, "states": {}, "error": "",
                "done_in_s": wall - 1, "peak_rss_mb": 1000.0, "beam": "DirectRunner in_memory",
                **more}

    t = {
        "cores": 2,
        "taxi_first": run(55.0, auc=0.9542, blessed=True,
                          stages={"Transform": 20.0, "Trainer": 15.0}),
        "taxi_rerun": run(1.8, up_to_date=True),
        "taxi_force": run(21.0, states={"CsvExampleGen": "cached", "Transform": "cached",
                                        "BaselineModelResolver": "resolved"}),
        "contract": run(30.5, returncode=1, refused=True,
                        error="error: data contract broken: fare: ...",
                        variant={"column": "fare", "rows": 15002, "changed": 1501,
                                 "share_out_of_range": 0.1, "allowed": 0.01,
                                 "expectation": "expect_column_values_to_be_between(fare, 0, "
                                                "771, mostly=0.99)"}),
        "penguins_first": run(38.0, accuracy=87 / 88, blessed=True, stages={"Transform": 9.0}),
        "reference": {"wall_s": 120.0, "returncode": 0, "accuracy": 0.99, "blessed": True,
                      "stages": {"Transform": 42.9}, "command": "-m ref run", "csv": {"rows": 342}},
        "breast_cancer": run(50.0, schema_draft_s=12.0, suite_draft_s=5.0, auc=0.998,
                             blessed=True, columns=32, rows=569,
                             stages={"Transform": 21.5}),
        "airflow_noop": _airflow_entry(12.3),
        "taxi_epochs": run(14.0, states={"Transform": "cached", "Trainer": "ran"}),
        "seed_script": {"wall_s": 5.0, "returncode": 0, "epochs": 7},
    }
    t["taxi_first"]["fixed_costs"] = {"imports": 1.5, "set-up": 3.0, "Trainer": 15.0,
                                      "MLflow logging after Pusher": 2.5}
    t["taxi_first"]["first_line_s"] = 1.5
    t.update(changes)
    return t


def test_targets_table_says_pass_or_fail_per_row():
    verdicts = {row[0]: (row[3], row[4]) for row in targets_table.rows(_fake_targets())}
    assert verdicts == {
        "1": ("55.0 s", "**FAIL**"),  # over 25 s
        "2": ("38.0 s", "**FAIL**"),  # over 15 s
        "3": ("1.8 s (Up to date, no TFX)", "pass"),
        "3b": ("21.0 s (2 cached, 1 resolved)", ""),
        "4": ('30.5 s, exit 1, "data contract broken"', "**FAIL**"),  # over 25 s
        "5": ("21.5 s", "**FAIL**"),  # over 20 s
        "5b": ("50.0 s (drafts: schema 12.0 s, suite 5.0 s)", ""),
        "6a": ("0.9542, yes", "pass"),  # within 0.003 of 0.956
        "6b": ("0.9886, yes", "pass"),  # one of 88 rows wrong: at least 0.98
        "7": ("0.32 (38.0 s / 120.0 s)", "**FAIL**"),  # over 0.2
        "8": ("12.3 s (4 skipped; check_inputs: up to date)", "pass"),
        "9": ("2.5 s", "pass"),
        "10": ("1.5 s", "pass"),
        "11": ("2.80 (14.0 s / 5.0 s, 7 epochs; 1 cached, 1 ran)", "pass"),
    }
    table = targets_table.markdown(_fake_targets())
    assert "| 1 | taxi first run, whole process | <= 25 s | 55.0 s | **FAIL** |" in table
    assert "| MLflow logging after Pusher | 2.5 |" in table  # the fixed-cost table
    assert "| 5 | breast cancer (32 numeric columns, 569 rows): Transform | <= 20 s | 21.5 s " \
           "| **FAIL** |" in table
    assert "| Transform | 20.0 | 9.0 | 42.9 | 21.5 |" in table  # stages side by side
    assert "1,501 of 15,002 rows with a negative fare, 10.0% out of range" in table


def test_targets_table_fails_what_misses_and_names_what_did_not_run():
    slow_rerun = _fake_targets(taxi_rerun={"wall_s": 19.0, "returncode": 0, "up_to_date": False},
                               contract={"wall_s": 20.0, "returncode": 2, "refused": False,
                                         "error": "error: something else"})
    t = slow_rerun | {"taxi_first": {"wall_s": 80.0, "returncode": 0, "auc": 0.9520,
                                     "blessed": True},
                      "penguins_first": {"wall_s": 35.0, "returncode": 0, "accuracy": 0.9773,
                                         "blessed": True}}
    del t["reference"]
    t["breast_cancer"] = {"error": "RuntimeError: command failed"}
    verdicts = {row[0]: (row[3], row[4]) for row in targets_table.rows(t)}
    assert verdicts["1"] == ("80.0 s", "**FAIL**")
    assert verdicts["3"] == ("19.0 s (went through TFX)", "**FAIL**")
    assert verdicts["4"] == ("20.0 s, exit 2, other message", "**FAIL**")
    assert verdicts["5"] == ("RuntimeError: command failed", "not measured")
    assert verdicts["6a"] == ("0.9520, yes", "**FAIL**")  # 0.004 below 0.956
    assert verdicts["6b"] == ("0.9773, yes", "**FAIL**")  # two of 88 rows wrong: below 0.98
    assert verdicts["7"] == ("not run", "not measured")
    assert verdicts["9"] == ("no MLflow line", "not measured")  # the run had no fixed costs
    assert verdicts["10"] == ("no output line", "not measured")
    t["seed_script"] = {"error": "the --epochs re-run did not say how many epochs"}
    t["taxi_epochs"] = {"wall_s": 16.0, "returncode": 0, "states": {}}
    assert targets_table.rows(t)[-1][3:] == ("the --epochs re-run did not say how many epochs",
                                             "not measured")
    t["seed_script"] = {"wall_s": 5.0, "returncode": 0, "epochs": 7}
    assert targets_table.rows(t)[-1][4] == "**FAIL**"  # 3.2 over 3
    # An error's message stays on its table row.
    t["breast_cancer"] = {"error": "RuntimeError: command failed (python -m pipeline schema):\n"
                                   "error: a | b\n" + "x" * 500}
    row = next(line for line in targets_table.markdown(t).splitlines() if line.startswith("| 5 |"))
    assert "a \\| b" in row and row.endswith("| not measured |") and len(row) < 400


def test_report_puts_the_targets_table_first():
    report = {"machine": {"cores": "2", "memory_gib": "24", "cpu": "x86_64", "python": "3.10"},
              "targets": _fake_targets()}
    table = bench_report.markdown(report)
    assert table.index("## Speed targets") < table.index("| 1 | taxi first run")
    assert "## Scaling" not in table  # --sections targets


# ---- row 8: a scheduled Airflow run with nothing changed ---------------------------------------

UP_TO_DATE = ("Up to date: the CSV, spec, schema, suite, code and settings are those of run r-1 "
              "of 2025-06-01 03:00. Nothing to run (--force runs the stages anyway).")


def _airflow_entry(wall, **changes):
    entry = {"wall_s": wall, "returncode": 0, "peak_rss_mb": 150.0, "dag_id": "csv2model-taxi",
             "logical_date": "2025-06-02", "command": "airflow dags test csv2model-taxi 2025-06-02",
             "spec_s": 7.0, "migrate_s": 2.5, "check_task": "check_inputs",
             "check_said": UP_TO_DATE, "run_id": "manual__2025-06-02T00:00:00+00:00",
             "run_state": "success",
             "tasks": {"check_inputs": "skipped", "CsvExampleGen": "skipped",
                       "Trainer": "skipped", "track_mlflow": "skipped"}}
    return entry | changes


def _row8(entry):
    [row] = [r for r in targets_table.rows(_fake_targets(airflow_noop=entry)) if r[0] == "8"]
    assert row[2] == "<= 60 s, every task skipped"
    return row[3], row[4]


def test_airflow_row_fails_what_ran_what_is_slow_and_names_what_did_not_run():
    assert _row8(_airflow_entry(61.0)) == (
        "61.0 s (4 skipped; check_inputs: up to date)", "**FAIL**")
    # The check found a change: the stages ran.
    ran = _airflow_entry(240.0, check_said="Running the stages: code changed since run r-1 of x.",
                         tasks={"check_inputs": "success", "CsvExampleGen": "success",
                                "Trainer": "success", "track_mlflow": "success"})
    assert _row8(ran) == ("240.0 s (4 success; check_inputs success: Running the stages: code "
                          "changed since run r-1 of x.)", "**FAIL**")
    # Skipped, but the tracking ran anyway; or a stage was not skipped.
    tracked = _airflow_entry(9.0)
    tracked["tasks"] = tracked["tasks"] | {"track_mlflow": "success"}
    assert _row8(tracked) == ("9.0 s (3 skipped, 1 success; check_inputs skipped: "
                              + UP_TO_DATE + ")", "**FAIL**")
    # Skipped without saying it was up to date (another reason to skip is not this target).
    assert _row8(_airflow_entry(9.0, check_said=""))[1] == "**FAIL**"
    # The DAG run failed; nothing found in Airflow's DB.
    failed = _airflow_entry(9.0, returncode=1, run_state="failed")
    assert _row8(failed) == ("9.0 s (4 skipped; check_inputs: up to date), exit 1", "**FAIL**")
    empty = {k: v for k, v in _airflow_entry(9.0).items() if k not in ("tasks", "run_state")}
    assert _row8(empty) == ("9.0 s (no DAG run in Airflow's DB)", "**FAIL**")
    # Not measured: no Airflow venv, a set-up step failed, or not run at all.
    assert _row8({"missing": "no Airflow in .venv-airflow/ (make airflow-venv)"}) == (
        "no Airflow in .venv-airflow/ (make airflow-venv)", "not measured")
    assert _row8({"error": "RuntimeError: command failed (airflow db migrate)"}) == (
        "RuntimeError: command failed (airflow db migrate)", "not measured")
    assert _row8(None) == ("not run", "not measured")


def test_airflow_note_names_the_one_off_set_up_apart_from_the_figure():
    table = targets_table.markdown(_fake_targets())
    assert ("| 8 | scheduled Airflow run, nothing changed: whole DAG (`airflow dags test`) | "
            "<= 60 s, every task skipped | 12.3 s (4 skipped; check_inputs: up to date) | pass |"
            in table)
    [note] = [line for line in table.splitlines() if line.startswith("- Airflow: ")]
    assert "`airflow dags test csv2model-taxi 2025-06-02`" in note
    assert "(`python -m pipeline airflow-spec`) 7.0 s, `airflow db migrate`" in note
    assert "2.5 s" in note and "Up to date: the CSV" in note
    assert "- Airflow: " not in targets_table.markdown(_fake_targets(airflow_noop={"missing": "x"}))


def test_check_inputs_line_is_read_from_the_dags_test_output():
    output = (
        "[2025-06-02T00:00:01.0+0000] {subprocess.py:88} INFO - Running command: ['python', '-m', "
        "'pipeline', 'check-inputs', '--run-id', 'manual__2025-06-02T00:00:00+00:00']\n"
        f"[2025-06-02 00:00:01,2] {{subprocess.py:106}} INFO - {UP_TO_DATE}\n"
        "[2025-06-02T00:00:01.3+0000] {subprocess.py:110} INFO - Command exited with return "
        "code 99\n"
        "[2025-06-02T00:00:04.0+0000] {taskinstance.py:310} INFO - check_inputs found nothing to "
        "run (its log names the last successful run): nothing to track\n")
    assert targets.check_said(output) == UP_TO_DATE
    said = targets.check_said(
        "x {subprocess.py:106} INFO - Running the stages: csv changed since run r-1 of y.\n")
    assert said == "Running the stages: csv changed since run r-1 of y."
    said = targets.check_said("INFO - Running the stages; the inputs could not be fingerprinted "
                              "(e), so ...")
    assert said.startswith("Running the stages; the inputs")
    assert targets.check_said("no check here\n") == ""


def test_task_states_come_from_the_newest_run_in_airflows_db(tmp_path):
    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as con:  # the columns read, as Airflow 2 names them
        con.execute("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, "
                    "state TEXT)")
        con.execute("CREATE TABLE task_instance (task_id TEXT, dag_id TEXT, run_id TEXT, "
                    "state TEXT)")
        con.executemany("INSERT INTO dag_run (dag_id, run_id, state) VALUES (?, ?, ?)",
                        [("csv2model-taxi", "old", "failed"), ("csv2model-taxi", "new", "success"),
                         ("csv2model-penguins", "other", "running")])
        con.executemany("INSERT INTO task_instance VALUES (?, ?, ?, ?)", [
            ("check_inputs", "csv2model-taxi", "old", "success"),
            ("check_inputs", "csv2model-taxi", "new", "skipped"),
            ("Trainer", "csv2model-taxi", "new", None),
            ("Trainer", "csv2model-penguins", "other", "running")])
    con.close()
    assert targets.airflow_run_states(db, "csv2model-taxi") == {
        "run_id": "new", "run_state": "success",
        "tasks": {"Trainer": "none", "check_inputs": "skipped"}}
    assert targets.airflow_run_states(db, "csv2model-breast_cancer") == {}
    with pytest.raises(sqlite3.Error):  # no DB: the entry says so instead of the states
        targets.airflow_run_states(tmp_path / "missing.db", "csv2model-taxi")


def test_without_the_airflow_venv_the_row_says_so_and_nothing_runs(tmp_path):
    settings = Settings(dataset="taxi", output_root=tmp_path / "runs")
    entry = targets.airflow_noop_run(settings, tmp_path / "logs", venv=tmp_path / ".venv-airflow")
    assert entry == {"missing": "no Airflow in .venv-airflow/ (make airflow-venv)"}
    assert not (tmp_path / "logs").exists() and not (tmp_path / "runs").exists()
    assert _row8(entry) == ("no Airflow in .venv-airflow/ (make airflow-venv)", "not measured")


def test_without_a_recorded_taxi_run_the_dag_is_not_run(tmp_path):
    """A failed first run records nothing: the DAG would run every stage, for minutes."""
    venv = tmp_path / ".venv-airflow"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "airflow").write_text("#!/bin/sh\nexit 1\n")
    settings = Settings(dataset="taxi", output_root=tmp_path / "runs")
    entry = targets.airflow_noop_run(settings, tmp_path / "logs", venv=venv)
    assert entry == {"error": "no successful taxi run recorded (last_success.json): nothing to "
                              "be up to date with"}
    assert not (tmp_path / "logs").exists()
    assert _row8(entry) == (entry["error"], "not measured")


def test_a_forked_child_is_not_counted_twice_in_the_tree_memory():
    import subprocess
    import sys

    from pipeline.bench.process import _tree_rss

    # 300 MB written by the parent, then a fork, measured right after it (as the sampler can
    # catch a child before its exec): the child maps every page of its parent.
    code = ("import os, sys, time\nblock = bytearray(300 << 20)\n"
            "block[::4096] = b'x' * len(block[::4096])\n"
            "if os.fork() == 0:\n    time.sleep(8)\n    os._exit(0)\n"
            "print('forked', flush=True)\ntime.sleep(8)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "forked"
        young = _tree_rss(proc.pid) / 2**20
        # A fork that lives on without an exec (the run's checks, runners/check_branch.py):
        # its private memory only, the pages it shares with its parent once.
        time.sleep(2.5)
        old = _tree_rss(proc.pid) / 2**20
    finally:
        proc.kill()
        proc.wait()
    assert 300 <= young < 450  # counting the child would read ~600 MB
    assert 300 <= old < 450


def test_a_forked_childs_own_memory_is_read_from_the_rollup_not_a_walk_of_smaps(monkeypatch):
    """The sampler reads the checks' process's unique set size from /proc/<pid>/smaps_rollup:
    psutil's memory_full_info walks /proc/<pid>/smaps holding the process's memory lock, which
    doubled a 1.5M-row scoring run's contract stage in make bench. Same figure as psutil's."""
    import os

    import psutil

    from pipeline.bench.process import _unique_set_size

    block = bytearray(64 << 20)
    block[::4096] = b"x" * len(block[::4096])
    expected = psutil.Process(os.getpid()).memory_full_info().uss
    monkeypatch.setattr(psutil.Process, "memory_full_info",
                        lambda self: pytest.fail("walked smaps"))
    uss = _unique_set_size(psutil.Process(os.getpid()))
    assert uss >= 64 << 20 and abs(uss - expected) < 16 << 20
    del block


def test_fixed_costs_split_a_run_by_when_its_lines_came():
    """Imports until the first line; set-up until the first stage started (its end less its
    seconds); each stage's own seconds; the launcher's gaps between stages; MLflow logging from
    the last stage (the Pusher) to the MLflow line; the rest to exit. They add up to the wall."""
    lines = [(1.5, "Pipeline csv2model-taxi: data.csv"), (1.5, "  full log: x"),
             (6.0, "  CsvExampleGen               ran         0.5s  splits train, eval"),
             (9.0, "  Transform                   ran         2.0s  25 transformed features"),
             (9.5, "  Pusher                      ran         0.2s  pushed to y"),
             (12.0, "MLflow run abc (finished), experiment 1, store sqlite:///z"),
             (12.1, "Done in 12s.")]
    costs = fixed_costs.parts(lines, wall_s=12.5)
    assert costs == pytest.approx({
        "imports": 1.5, "set-up": 4.0, "CsvExampleGen": 0.5, "Transform": 2.0, "Pusher": 0.2,
        "between stages": 1.3, "MLflow logging after Pusher": 2.5, "the rest, to exit": 0.5})
    assert sum(costs.values()) == pytest.approx(12.5)
    assert costs[fixed_costs.MLFLOW_AFTER_PUSHER] == pytest.approx(2.5)
    # A refused input: no stage, no MLflow line; all of it is set-up.
    assert fixed_costs.parts([(1.0, "error: x")], 2.0) == {
        "imports": 1.0, "set-up": 1.0, "the rest, to exit": 0.0}


def test_fixed_costs_count_stages_that_ran_beside_each_other_once():
    """The contract check ran in the checks' process while the Transform ran (check_branch.py):
    its 2 s are inside the Transform's span, so they come off again as a part of their own, and
    the gaps are what no stage covered."""
    lines = [(1.0, "Pipeline csv2model-taxi: data.csv"),
             (5.5, "  CsvExampleGen               ran         0.5s  splits train, eval"),
             (8.0, "  GreatExpectationsValidator  ran         2.0s  expectations passed 60/60"),
             (9.0, "  Transform                   ran         3.0s  25 transformed features"),
             (12.0, "  Trainer                     ran         2.5s  val accuracy 0.9"),
             (12.2, "  Pusher                      ran         0.1s  pushed to y"),
             (13.0, "MLflow run abc (finished), experiment 1, store sqlite:///z")]
    costs = fixed_costs.parts(lines, wall_s=13.5)
    assert costs == pytest.approx({
        "imports": 1.0, "set-up": 4.0, "CsvExampleGen": 0.5, "GreatExpectationsValidator": 2.0,
        "Transform": 3.0, "Trainer": 2.5, "Pusher": 0.1, "between stages": 1.1,
        "stages beside each other": -2.0, fixed_costs.MLFLOW_AFTER_PUSHER: 0.8,
        "the rest, to exit": 0.5})
    assert sum(costs.values()) == pytest.approx(13.5)


def test_measured_lines_carry_when_they_came(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import sys, time\nprint('a', flush=True)\ntime.sleep(0.6)\n"
                      "print('b', flush=True)\n")
    run = measure([sys.executable, str(script)])
    (first, a), (second, b) = run.line_seconds
    assert (a, b) == ("a", "b") and second - first >= 0.5 and run.wall_seconds >= second


def test_the_targets_table_says_when_an_untimed_warm_up_ran_first():
    from pipeline.bench import targets_table

    assert "untimed process imported what a run imports (14.2 s)" in targets_table.markdown(
        {"cores": 2, "page_cache_warm_up_s": 14.2})
    assert "untimed" not in targets_table.markdown({"cores": 2})
