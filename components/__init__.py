"""TFX module code (preprocessing_fn, the Keras model, run_fn) and custom components."""


def __getattr__(name: str):
    # Resolved on first use, so `import components` stays free of TFX imports: Kubeflow v2
    # rebuilds custom artifacts from their TYPE_NAME, "components.DataValidationReport".
    if name == "DataValidationReport":
        from components.contract.gates import DataValidationReport

        return DataValidationReport
    raise AttributeError(f"module 'components' has no attribute {name!r}")
