"""Synthetic experiments of docs/CATALOG.md (synthetic targets): no data set, a CPU is enough."""
