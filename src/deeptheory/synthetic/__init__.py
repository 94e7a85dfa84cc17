"""Synthetic experiments of EXPERIMENTS.md section B: no data set, a CPU is enough."""
