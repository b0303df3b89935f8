"""coobill's benchmarks: `python -m bench` runs them all; results go in docs/benchmarks.md."""
