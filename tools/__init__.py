"""The project's tools: ``tools.lab`` (the lab) and the benchmarks."""
