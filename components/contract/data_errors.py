"""The error for input data that must not go further. A module of its own, free of TFX imports,
so that the CSV preflight can raise it (and the CLI recognise it) without loading TFX."""


class DataValidationError(RuntimeError):
    """Input data broke the schema or the data contract; the message lists every problem."""


# TFX removes a failed execution's output folders (launcher._run_executor, remove_output_dirs),
# so a gate that has figures to keep when it stops the run (DriftGate) writes them also here,
# beside its output folder; the summary and MLflow read them back
# (pipeline/mlmd/unpublished_outputs.py).
KEPT_SUFFIX = ".stopped"


def kept_folder(uri: str) -> str:
    """Where a stage keeps what it wrote into its output folder `uri` before it stops the run."""
    return uri.rstrip("/") + KEPT_SUFFIX
