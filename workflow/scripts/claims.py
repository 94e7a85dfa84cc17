"""Gather every target's claim rows into results/claims.csv (rule claims)."""

from deeptheory import logs, report

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = logs.setup(sm.log[0], "claims")
table = report.gather_claims(list(sm.input), sm.output.csv, sm.output.md)
log.info("%d claims: %s", len(table), table["verdict"].value_counts().to_dict())
