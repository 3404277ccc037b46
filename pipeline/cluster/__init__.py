"""A local Apache Flink session cluster for the pipeline's Beam stages (`make flink`): Flink's own
JVMs, Beam's Python worker pool, and the checks a Flink run makes before TFX starts."""
