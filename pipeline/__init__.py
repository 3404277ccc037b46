"""The pipeline definition, its settings and the runners that execute it."""
