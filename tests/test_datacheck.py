"""The raw-data check at every start (deeptheory.datacheck); the whole path, a changed
archive stopping Snakemake, is in tests/test_workflow.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deeptheory import datacheck, fetch

PLAN = SimpleNamespace(specs={"r": SimpleNamespace(dataset="ds")})
DATASETS = {"ds": {"files": {"a.gz": {"md5": "0" * 32}}}}


def test_an_archive_a_marker_vouches_for_must_be_there_unless_this_command_refetches_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    datacheck.check_fetched_data(PLAN, DATASETS, [])          # nothing fetched yet: rule fetch_dataset will
    marker = tmp_path / "data" / "raw" / "ds" / "verified.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    with pytest.raises(datacheck.RawDataError, match="a.gz of data set 'ds' is missing") as err:
        datacheck.check_fetched_data(PLAN, DATASETS, [])
    assert fetch.refetch_command("ds") in str(err.value)
    datacheck.check_fetched_data(PLAN, DATASETS, ["-f", "data/raw/ds/verified.json"])  # the refetch itself
    assert not datacheck.refetching("ds", ["data/raw/ds/verified.json"])  # named, not forced, marker there
    datacheck.check_fetched_data(PLAN, {}, [])                 # a data set config does not list: not ours
