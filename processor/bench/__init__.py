"""Benchmarks, each runnable as ``python -m processor.bench.<name>`` (kernels, embedded pipeline, video)."""
