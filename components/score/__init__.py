"""New data against a trained model: scoring a file with the champion (`make score`: the serving
schema, drift, the scored CSV) and drift between the data drops of training runs."""
