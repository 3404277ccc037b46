"""Reading the input CSV: the dialect-aware opener every reader of the CSV shares (csv_format)
and the ExampleGen executor that turns it into tf.Examples (executor, needs TFX and Beam)."""
