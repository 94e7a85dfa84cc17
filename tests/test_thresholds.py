"""Every claim threshold is one config key: the code reads exactly the keys of the schema's
``claims``, so a misspelt ``tol.<name>`` fails here, not at the end of one target's build."""

import re
from pathlib import Path

import pytest
import yaml

from deeptheory import claims as C
from deeptheory.configcheck import SCHEMA

from conftest import config_claims

SRC = Path(__file__).resolve().parents[1] / "src" / "deeptheory"
READ = re.compile(r"\btol\.([a-z_0-9]+)")  # claims.Tolerances is always read through a name `tol`


def schema_keys() -> set[str]:
    return set(yaml.safe_load(SCHEMA.read_text())["properties"]["claims"]["properties"])


def keys_read() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for key in READ.findall(path.read_text()):
            found.setdefault(key, set()).add(path.relative_to(SRC).as_posix())
    return found


def test_the_code_reads_only_thresholds_the_schema_declares():
    unknown = {k: sorted(files) for k, files in keys_read().items() if k not in schema_keys()}
    assert not unknown, f"tol.<name> read but not a key of claims in the schema: {unknown}"


def test_every_declared_threshold_is_read_somewhere():
    assert not schema_keys() - set(keys_read()), "claims keys that no claim reads (dead config)"


def test_the_config_sets_every_threshold_of_its_schema_type():
    tol = C.Tolerances(config_claims())
    types = {"number": float, "integer": int}
    declared = yaml.safe_load(SCHEMA.read_text())["properties"]["claims"]["properties"]
    assert set(tol.__slots__) == schema_keys()
    for key, prop in declared.items():
        assert type(getattr(tol, key)) is types[prop["type"]], key


def test_a_missing_or_unknown_threshold_is_named_at_construction():
    given = config_claims()
    del given["train_zero"]
    with pytest.raises(KeyError, match=r"config key claims.train_zero is missing"):
        C.Tolerances(given)
    with pytest.raises(KeyError, match=r"config key claims.train_zeroo: not a claim threshold of the schema"):
        C.Tolerances({**config_claims(), "train_zeroo": 0.01})


def test_a_name_the_schema_lacks_is_no_attribute_and_thresholds_are_read_only():
    tol = C.Tolerances(config_claims())
    with pytest.raises(AttributeError):
        tol.no_such_threshold
    with pytest.raises(AttributeError, match="claims.train_zero"):
        tol.train_zero = 0.5
