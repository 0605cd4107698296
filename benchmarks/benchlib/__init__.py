"""Building blocks of the omsign benchmark suite (`benchmarks/run.py`)."""
