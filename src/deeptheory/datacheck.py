"""The raw-data check run at every start of the workflow (common.smk calls it once).

Every archive of a data set the plan uses that is on disk, verified.json or not (removing
the marker must not hide a changed archive), and every archive a verified.json vouches for,
is checked against the md5 pinned in config and DVC's record (audit.check_archive, the
fetch step's own checks); a failure stops the workflow before any job runs. Costs one md5
per archive (0.1 s per 26 MB). The command that fetches a data set again
(fetch.refetch_command) is let through for that data set.
"""

from __future__ import annotations

import os
from pathlib import Path

from .audit import check_archive
from .fetch import refetch_command


class RawDataError(Exception):
    """Raw data that does not match its pinned checksums (the message says how to refetch)."""


def refetching(dataset: str, args: list[str]) -> bool:
    """Whether the command line ``args`` fetches ``dataset`` again: it names its
    verified.json, and forces it or the marker is absent. Read from the command line:
    Snakemake sets its DAG settings only after it has read the Snakefile."""
    marker = f"data/raw/{dataset}/verified.json"
    if marker not in {os.path.normpath(a) for a in args}:
        return False
    forced = {"-f", "--force", "-F", "--forceall"} & set(args) or "fetch_dataset" in args
    return bool(forced) or not Path(marker).exists()


def check_fetched_data(plan, datasets: dict, args: list[str], root: str | Path = "data/raw") -> None:
    """Raise RawDataError for the first archive of ``plan``'s data sets that fails its check."""
    for dataset in sorted({s.dataset for s in plan.specs.values()}):
        raw = Path(root) / dataset
        if dataset not in datasets or refetching(dataset, args):
            continue
        verified = (raw / "verified.json").exists()
        for filename in datasets[dataset]["files"]:
            path = raw / filename
            if not path.exists() and not verified:
                continue  # not fetched yet: rule fetch_dataset will
            problem = (f"archive {path} of data set '{dataset}' is missing" if not path.exists()
                       else check_archive(path, dataset, filename, datasets[dataset]))
            if problem:
                raise RawDataError(f"raw data does not match its pinned checksums:\n{problem}\n"
                                   f"  To fetch and verify it again (nothing else reruns if it then "
                                   f"matches), with your build's --configfile options:\n"
                                   f"    {refetch_command(dataset)}")
