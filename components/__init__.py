"""TFX module code (preprocessing_fn, the Keras model, run_fn) and custom components."""
