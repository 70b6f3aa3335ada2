"""The parts of benchmarks/mini_paper.py, one job per module (the script is the entry point)."""
