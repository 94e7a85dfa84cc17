"""deeptheory: reproduce the experiments of the CBMM 'Theory of Deep Learning' memos.

The library knows nothing of Snakemake: every entry point takes explicit paths and
values, so the rules in ``workflow/`` stay thin and the tests call the same code.
"""

__version__ = "0.1.0"
