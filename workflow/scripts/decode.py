"""Decode a verified data set once into the array cache jobs load (rule decode_dataset)."""

from pathlib import Path

from deeptheory import datasets, logs

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0], f"decode {sm.wildcards.dataset}")
shapes = datasets.build_cache(sm.params.fmt, Path(sm.input[0]).parent, Path(sm.output[0]))
log.info("decoded %s: %s", sm.wildcards.dataset, shapes)
