"""The error for input data that must not go further. A module of its own, free of TFX imports,
so that the CSV preflight can raise it (and the CLI recognise it) without loading TFX."""


class DataValidationError(RuntimeError):
    """Input data broke the schema or the data contract; the message lists every problem."""
