"""Every pipeline knob in one typed place, with CLI overrides generated from the same fields.

Defaults live only here: the CLI, the runners and the tests all start from ``Settings()``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from pipeline.config.dataset_spec import DatasetSpec, load_spec
from pipeline.config.stage_names import TUNED_STAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
BEAM_MODES = ("auto", "in_memory", "multi_processing", "multi_threading")
# `--beam-mode auto` runs Beam in this process (in_memory) up to this much CSV, and one worker
# process per core above it when there are more than IN_MEMORY_MAX_CORES cores. Measured on 2
# cores (README, Benchmarks): in_memory wins every data stage at 15k and 150k taxi rows (2 and
# 20 MB) with a third of the memory; at 1.5M rows (200 MB) multi_processing's two workers ran
# the whole pipeline in 293 s against 347-364 s, at twice the peak memory (3.5 GB against 1.8
# GB, which in_memory holds near its 1.5 GB at 150k): the worker processes each pay a TensorFlow
# import and a model load and hold their own share of what the stage reads. On 2 cores the
# default keeps memory flat in the rows; --beam-mode multi_processing buys the ~17% back.
IN_MEMORY_MAX_BYTES = 64 * 2**20
IN_MEMORY_MAX_CORES = 2
BEAM_RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner", "DataflowRunner")
# Where the SDK workers of a Flink or Spark job come from: `external`, a Beam worker pool that
# runs this virtualenv (`make flink` starts one; no Docker), or `docker`, cluster_image. `auto`
# takes the worker pool for a master on this machine (127.0.0.1, localhost) and the image else.
BEAM_ENVIRONMENTS = ("auto", "external", "docker")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# `make flink` (pipeline/cluster/): the Flink REST port and the worker pool's, on 127.0.0.1.
FLINK_REST_PORT = 8081
WORKER_POOL_PORT = 50000
# Beam 2.59's Flink job server (Flink 1.18), fetched into the cache at set-up (scripts/install-flink)
# and handed to Beam, which would otherwise download it from Maven Central at run time.
FLINK_JOB_SERVER_JAR = REPO_ROOT / ".cache" / "flink" / "beam-runners-flink-1.18-job-server-2.59.0.jar"


def _beam_runner_name(text: str) -> str:
    """`--beam-runner flink` for FlinkRunner (any case, with or without the Runner suffix)."""
    key = text.lower().removesuffix("runner")
    return next((name for name in BEAM_RUNNERS if name.lower().removesuffix("runner") == key),
                text)


# The fields below that shape the model (components/train/model.py): the Trainer's custom_config
# carries them under these names, and the Tuner's search space may name them.
MODEL_SETTINGS = ("model_architecture", "hidden_units", "hidden_layers", "learning_rate",
                  "lr_schedule", "dropout", "batch_norm", "embedding_min_cardinality",
                  "embedding_dim", "numeric_embedding_dim", "crosses", "regression_loss")
# Settings only a regression task reads (docs/regression.md).
REGRESSION_SETTINGS = ("regression_loss", "max_rmse", "min_improvement_over_mean",
                       "max_rmse_increase")


def check_train_ratio(ratio: float) -> float:
    """The split is by hash buckets of 1%: each split needs at least one."""
    if not 0 < round(ratio * 100) < 100:
        raise ValueError(f"train_ratio must be between 0.01 and 0.99, got {ratio}")
    return ratio


def check_positive(value: int) -> int:
    """Counts that must be at least 1 (a Dense layer of 0 units aborts TensorFlow itself)."""
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _positive(text: str) -> int:
    return _argument(check_positive, int, text)


def _argument(check, parse, text: str):
    """A check's ValueError as argparse's usage error (exit 2, the check's own words)."""
    try:
        return check(parse(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
    until: str = _opt(
        "", "run only this stage and the stages it needs, e.g. Transform for the data stages "
        "alone; empty runs them all (local runs only: the schedule runs every stage)",
        choices=("", *TUNED_STAGES))
    force: bool = _opt(
        False, "go through TFX even when every input (CSV, spec, schema, suite, code, settings) is "
        "byte-identical to the last successful run's; TFX's cache still skips unchanged stages")
    wait: bool = _opt(
        True, "when another run holds the output folder (one run per folder at a time), wait "
        "for it; --no-wait exits at once (status 75) naming the run that holds it")

    # Data split.
    train_ratio: float = _opt(0.7, "share of rows hashed into the train split; the rest is eval",
                              type=lambda text: _argument(check_train_ratio, float, text))

    # Model (components/train/model.py) and training. Defaults measured on taxi, penguins and the
    # breast-cancer table (README, Results).
    model_architecture: str = _opt(
        "tabular", "tabular: embeddings, dropout and the options below; classic: the seed's MLP "
        "(every categorical one-hot, Dense 64 relu x2, softmax, Adam at 1e-3)",
        choices=("tabular", "classic"))
    hidden_units: int = _opt(128, "tabular: width of each hidden Dense layer", type=_positive)
    hidden_layers: int = _opt(2, "tabular: number of hidden Dense relu layers")
    learning_rate: float = _opt(1e-3, "tabular: Adam learning rate (the start of the schedule)")
    lr_schedule: str = _opt(
        "constant", "tabular: learning-rate schedule; cosine decays it over the epochs",
        choices=("constant", "cosine"))
    dropout: float = _opt(0.3, "tabular: dropout after each hidden layer (0 for none)")
    batch_norm: bool = _opt(False, "tabular: batch normalization after each hidden layer")
    embedding_min_cardinality: int = _opt(
        10, "tabular: categorical and bucket ids with more values than this are embedded "
        "instead of one-hot")
    embedding_dim: int = _opt(0, "tabular: embedding width; 0 sizes it from the vocabulary")
    numeric_embedding_dim: int = _opt(
        0, "tabular: >0 gives each numeric input its own Dense relu layer of this width")
    crosses: str = _opt(
        "none", "tabular: bucket_pairs crosses every pair of bucketized features, embedded",
        choices=("none", "bucket_pairs"))
    regression_loss: str = _opt(
        "mse", "regression tasks: the training loss on the standardized label; huber (delta 1 "
        "standard deviation) weighs outliers linearly", choices=("mse", "huber"))
    epochs: int = _opt(30, "maximum training epochs (early stopping may end sooner)",
                       type=_positive)
    batch_size: int = _opt(128, "training batch size", type=_positive)
    early_stopping_patience: int = _opt(3, "epochs without eval-loss improvement before stopping")
    seed: int = _opt(42, "seed for weights, shuffling and the TF/NumPy/Python RNGs")

    # Hyperparameter search (components/train/hyperparameters.py): TFX's Tuner, KerasTuner inside.
    tune: bool = _opt(False, "search the model's hyperparameters with TFX's Tuner first; the "
                      "Trainer then trains with the best set")
    tuner_algorithm: str = _opt("bayesian", "KerasTuner search algorithm",
                                choices=("bayesian", "hyperband", "random"))
    tuner_max_trials: int = _opt(8, "trials (models trained) the search may run")
    tuner_epochs: int = _opt(10, "maximum epochs per trial (early stopping may end sooner)",
                             type=_positive)
    tuner_search_space: str = _opt(
        "hidden_units=64,128,256;hidden_layers=1,2,3;dropout=0.0,0.2,0.3,0.4;"
        "learning_rate=0.0003,0.001,0.003;lr_schedule=constant,cosine",
        "the search space: NAME=V1,V2,...; for model settings above (each choice a value)")

    # Evaluation gates: None leaves each to the spec's `gates:` block, else GATE_DEFAULTS (gate()).
    min_auc: float | None = _opt(
        None, "binary tasks: AUC the model must reach to be blessed (default: the spec's "
        "gates.min_auc, else 0.93)", type=float)
    min_accuracy: float | None = _opt(
        None, "multiclass tasks: accuracy the model must reach to be blessed (default: the "
        "spec's gates.min_accuracy, else 0.9)", type=float)
    max_metric_drop: float | None = _opt(
        None, "how far the gated metric may fall below the champion's and still bless (default: "
        "the spec's gates.max_metric_drop, else 0)", type=float)
    max_rmse: float | None = _opt(
        None, "regression tasks: RMSE (label units) the model must stay at or under to be blessed "
        "(default: the spec's gates.max_rmse, else no bound)", type=float)
    min_improvement_over_mean: float | None = _opt(
        None, "regression tasks: fraction by which the RMSE must beat predicting the training "
        "mean (default: the spec's gates.min_improvement_over_mean, else 0: it must beat it)",
        type=float)
    max_rmse_increase: float | None = _opt(
        None, "regression tasks: fraction by which the RMSE may exceed the champion's and still "
        "bless (default: the spec's gates.max_rmse_increase, else 0)", type=float)

    baseline_strategy: str = _opt(
        "latest_blessed_other",
        "baseline for the change threshold: the latest blessed model other than the candidate "
        "(keeps unchanged re-runs fully cached), or TFX's latest_blessed (what Kubeflow v2 runs)",
        choices=("latest_blessed_other", "latest_blessed"),
    )

    # Beam.
    beam_mode: str = _opt(
        "auto", "Beam DirectRunner running mode; auto: in_memory for a CSV up to "
        f"{IN_MEMORY_MAX_BYTES // 2**20} MB or on up to {IN_MEMORY_MAX_CORES} cores, else "
        "multi_processing",
        choices=BEAM_MODES)
    beam_workers: int = _opt(0, "Beam DirectRunner workers; 0 means one per core")
    beam_args: tuple[str, ...] = _opt(
        (), "extra Beam pipeline args, after the runner's own, e.g. "
        "--beam-args=--flink_job_server_jar=PATH (repeatable)"
    )

    # MLflow (the store is outputs/<dataset>/mlflow unless MLFLOW_TRACKING_URI says otherwise).
    serve_port: int = _opt(5001, "port on 127.0.0.1 where `make serve` serves the champion model")
    serve_workers: int = _opt(
        0, "worker processes of `make serve`'s model server, each with its own copy of the "
        "model; 0 means one per core")
    mlflow_ui_port: int = _opt(5000, "port on 127.0.0.1 where `make mlflow-ui` serves the UI")

    # Beyond one machine (README: "From a laptop to a cluster"). The runner decides where the
    # Beam stages (ExampleGen, StatisticsGen, Transform, Evaluator) run; the others run in the
    # orchestrator's worker either way.
    beam_runner: str = _opt(
        "DirectRunner", "Beam runner (flink, spark, dataflow are short for FlinkRunner, ...); "
        "DirectRunner runs on this machine", choices=BEAM_RUNNERS, type=_beam_runner_name)
    beam_master: str = _opt(
        "", "FlinkRunner: Flink master host:port; SparkRunner: Spark master URL spark://host:port")
    beam_environment: str = _opt(
        "auto", "FlinkRunner, SparkRunner: where the SDK workers run; external: the Beam worker "
        "pool at --beam-worker-pool (this virtualenv, no Docker); docker: --cluster-image; auto: "
        "external for a master on 127.0.0.1/localhost, else docker", choices=BEAM_ENVIRONMENTS)
    beam_worker_pool: str = _opt(
        f"127.0.0.1:{WORKER_POOL_PORT}", "host:port of the Beam worker pool (`make flink` starts "
        "one) for --beam-environment external")
    flink_job_server_jar: Path = _opt(
        FLINK_JOB_SERVER_JAR, "FlinkRunner: Beam's Flink job server jar, installed at set-up "
        "(scripts/install-flink); Beam would download it at run time otherwise")
    cluster_image: str = _opt(
        "csv2model:latest", "container image with the project installed: the Kubeflow default "
        "image, and the Beam worker image on Flink, Spark and Dataflow")
    gcp_project: str = _opt("", "DataflowRunner: Google Cloud project id")
    gcp_region: str = _opt("us-central1", "DataflowRunner: Google Cloud region")
    gcs_temp: str = _opt("", "DataflowRunner: gs:// folder for Beam's temp and staging files")

    # Airflow schedule (`make airflow`): the same pipeline, one Airflow task per stage.
    schedule: str = _opt("0 3 * * *", "cron expression of scheduled runs; 'none' for manual only")
    schedule_start: str = _opt("2025-01-01", "first day (UTC) of the schedule, for catch-up")
    catchup: bool = _opt(
        False, "also run every schedule interval missed since schedule_start, not only the latest")
    retries: int = _opt(
        1, "retries of a failed stage (a refused input or a broken data contract fails at once)")
    retry_delay_s: int = _opt(300, "seconds before a failed stage is retried")
    airflow_port: int = _opt(8080, "port on 127.0.0.1 where `make airflow` serves the Airflow UI")

    # ---- derived values -------------------------------------------------------------------
    def gate(self, spec: DatasetSpec, key: str) -> "Gate":
        """A blessing gate (a key of dataset_spec.GATE_KEYS) and where its value comes from: the
        command line (a Settings field that is not None) wins, then the spec's `gates:` block,
        then GATE_DEFAULTS."""
        value = getattr(self, key)
        if value is not None:
            return Gate(key, float(value), _flag(key))
        value = spec.gates.get(key)
        if value is not None:
            return Gate(key, value, f"gates.{key} in spec.yaml")
        return Gate(key, GATE_DEFAULTS[key], "default")

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

    @property
    def mlflow_dir(self) -> Path:
        return self.output_dir / "mlflow"

    @property
    def registered_model_name(self) -> str:
        """MLflow registry name: one registered model per pipeline and dataset."""
        return self.full_pipeline_name

    def input_csv(self) -> Path | None:
        """The CSV this run reads: --csv, else the spec's (None when the spec cannot be read)."""
        try:
            return Path(self.csv or load_spec(self.spec_path, check_csv=False).csv_path)
        except (OSError, ValueError):
            return None

    def input_bytes(self) -> int:
        """Size of the CSV this run reads (0 when it cannot be found: the preflight says why)."""
        path = self.input_csv()
        try:
            return path.stat().st_size if path is not None else 0
        except OSError:
            return 0

    def resolved_beam_mode(self) -> str:
        """The DirectRunner mode this run uses: beam_mode, with `auto` decided by input size and
        cores."""
        if self.beam_mode != "auto":
            return self.beam_mode
        return choose_beam_mode(self.input_bytes(), os.cpu_count() or 1)

    def beam_pipeline_args(self) -> list[str]:
        """The beam_runner's argument set, then beam_args (later args win in Beam)."""
        return self._beam_runner_args() + list(self.beam_args)

    def resolved_beam_environment(self) -> str:
        """`external` or `docker`: beam_environment with `auto` decided by the master's host."""
        if self.beam_environment != "auto":
            return self.beam_environment
        from urllib.parse import urlsplit

        host = urlsplit("//" + self.beam_master.split("://", 1)[-1]).hostname or ""
        return "external" if host in LOOPBACK_HOSTS else "docker"

    def _beam_runner_args(self) -> list[str]:
        runner = self.beam_runner
        if runner == "DirectRunner":
            mode = self.resolved_beam_mode()
            # in_memory runs in this process: more than one worker only earns Beam's warning.
            workers = 1 if mode == "in_memory" else self.beam_workers or os.cpu_count() or 1
            # cloudpickle: Beam's default, dill, resets a logger level on every object it
            # pickles, and tf.Transform pickles thousands; Transform ran ~25% longer with it.
            return [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}",
                    "--pickle_library=cloudpickle"]
        # Cluster workers run our module code (preprocessing_fn, the model), so their Beam SDK
        # harness is the project image rather than Beam's stock one.
        if runner in ("FlinkRunner", "SparkRunner"):
            if not self.beam_master:
                raise ValueError(f"{runner} needs --beam-master (where the cluster listens)")
            master = "--flink_master" if runner == "FlinkRunner" else "--spark_master_url"
            args = [f"--runner={runner}", f"{master}={self.beam_master}"]
            if runner == "FlinkRunner":
                # The jar on disk: Beam downloads it from Maven Central at run time otherwise.
                args += ["--flink_version=1.18",
                         f"--flink_job_server_jar={self.flink_job_server_jar}"]
            if self.resolved_beam_environment() == "external":
                # The worker pool's workers run this virtualenv, so TFX must not pack itself
                # for them either (pipeline/runners/beam_packaging.py); cloudpickle as on the
                # DirectRunner (same pickler on both ends).
                return args + ["--environment_type=EXTERNAL",
                               f"--environment_config={self.beam_worker_pool}",
                               "--pickle_library=cloudpickle"]
            # --sdk_container_image too: it tells TFX the image holds TFX, so it does not pack
            # itself for the workers to install (pipeline/runners/beam_packaging.py).
            return args + ["--environment_type=DOCKER",
                           f"--environment_config={self.cluster_image}",
                           f"--sdk_container_image={self.cluster_image}"]
        if runner == "DataflowRunner":
            if not self.gcp_project or not self.gcs_temp.startswith("gs://"):
                raise ValueError("DataflowRunner needs --gcp-project and a gs:// --gcs-temp")
            return [f"--runner={runner}", f"--project={self.gcp_project}",
                    f"--region={self.gcp_region}", f"--temp_location={self.gcs_temp}",
                    f"--sdk_container_image={self.cluster_image}"]
        raise ValueError(f"unknown beam_runner {runner!r}; choose one of {BEAM_RUNNERS}")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


# A gate neither the command line nor the spec sets (the values both shipped datasets had as
# global defaults before specs held gates).
GATE_DEFAULTS = {"min_auc": 0.93, "min_accuracy": 0.9, "max_metric_drop": 0.0,
                 # regression: no bound on the RMSE itself; it must beat the training mean and
                 # be no worse than the champion's
                 "max_rmse": float("inf"), "min_improvement_over_mean": 0.0,
                 "max_rmse_increase": 0.0}


class Gate(NamedTuple):
    key: str  # min_auc, min_accuracy, max_metric_drop
    value: float
    source: str  # "--min-auc", "gates.min_auc in spec.yaml" or "default"

    @property
    def where(self) -> str:
        """Where to change it, for a message: the spec's key and the flag."""
        return f"gates.{self.key} in spec.yaml, or {_flag(self.key)}"


# The servers a team shares (docs/team.md). Read from the environment, never Settings fields: a
# field becomes a flag in every Airflow task's command and an MLflow parameter of every run, and
# these URLs may carry a password (or leave it to ~/.pgpass, which libpq reads).
AIRFLOW_DB_URL_ENV = "AIRFLOW_DB_URL"
MLFLOW_BACKEND_STORE_ENV = "MLFLOW_BACKEND_STORE_URI"  # MLflow's own name, for `mlflow server`
MLFLOW_ARTIFACTS_ENV = "MLFLOW_ARTIFACTS_DESTINATION"


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    # Empty: SQLite and the SequentialExecutor (zero set-up). A PostgreSQL URL, e.g.
    # postgresql+psycopg2://user:pass@127.0.0.1:5432/airflow: the LocalExecutor, which runs the
    # stages that do not depend on each other at the same time.
    airflow_db_url: str = ""
    # `make mlflow-server`'s backend store (a PostgreSQL URL) and its artifact root (a folder;
    # default <output-root>/mlflow-server/artifacts).
    mlflow_backend_store_uri: str = ""
    mlflow_artifacts_destination: str = ""

    @classmethod
    def from_env(cls, environ: Any = None) -> "ServerSettings":
        environ = os.environ if environ is None else environ
        return cls(airflow_db_url=environ.get(AIRFLOW_DB_URL_ENV, "").strip(),
                   mlflow_backend_store_uri=environ.get(MLFLOW_BACKEND_STORE_ENV, "").strip(),
                   mlflow_artifacts_destination=environ.get(MLFLOW_ARTIFACTS_ENV, "").strip())


def choose_beam_mode(input_bytes: int, cores: int) -> str:
    """`--beam-mode auto`: in_memory for small inputs or few cores, else multi_processing."""
    if cores <= IN_MEMORY_MAX_CORES or input_bytes <= IN_MEMORY_MAX_BYTES:
        return "in_memory"
    return "multi_processing"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# Fields only the training pipeline reads: `score` does not offer them (it scores with the
# champion as it was trained; an `--epochs` there would be accepted and do nothing). The gates
# stay: a labelled file is evaluated against them.
TRAINING_ONLY = frozenset({
    "until", "train_ratio", "model_architecture", "hidden_units", "hidden_layers",
    "learning_rate", "lr_schedule", "dropout", "batch_norm", "embedding_min_cardinality",
    "embedding_dim", "numeric_embedding_dim", "crosses", "regression_loss", "epochs",
    "batch_size", "early_stopping_patience", "seed", "tune", "tuner_algorithm",
    "tuner_max_trials", "tuner_epochs", "tuner_search_space", "baseline_strategy",
})


def add_arguments(parser: argparse.ArgumentParser, leave_out: frozenset[str] = frozenset()) -> None:
    """One CLI option per Settings field but those in leave_out; help text and defaults come
    from the field."""
    for f in dataclasses.fields(Settings):
        if f.name in leave_out:
            continue
        default = f.default
        help_text = f.metadata["help"] if default is None else \
            f"{f.metadata['help']} (default: {default if default != () else 'none'})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if isinstance(default, str) and "type" in f.metadata:  # e.g. `--beam-runner flink`
            kwargs["type"] = f.metadata["type"]
        if f.name == "beam_args":
            kwargs.update(action="append", metavar="ARG")
        elif isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (int, float)):
            kwargs["type"] = f.metadata.get("type", type(default))
        elif default is None and "type" in f.metadata:
            kwargs["type"] = f.metadata["type"]
        elif f.name in ("data_root", "output_root", "csv", "flink_job_server_jar"):
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


def settings_args(settings: Settings, leave_out: frozenset[str] = frozenset()) -> list[str]:
    """Command-line flags that rebuild `settings` from Settings() (only what differs), but for
    the fields in leave_out (TRAINING_ONLY for `score`): how the Airflow tasks and the
    benchmark hand settings to `python -m pipeline`."""
    args: list[str] = []
    for field in dataclasses.fields(Settings):
        value, default = getattr(settings, field.name), field.default
        if value == default or field.name in leave_out:
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple):
            args += [f"{flag}={item}" for item in value]
        else:
            args += [flag, str(value)]
    return args
