"""Every claim threshold is one config key: the code reads exactly the keys of the schema's
``claims``, so a misspelt ``tol.<name>`` fails here, not at the end of one target's build."""

import re
from pathlib import Path

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


def test_the_config_sets_every_threshold_and_a_missing_one_is_named():
    tol = C.Tolerances(config_claims())
    for key in schema_keys():
        assert isinstance(getattr(tol, key), float)
    try:
        C.Tolerances({}).train_zero
    except KeyError as err:
        assert "claims.train_zero" in str(err)
    else:
        raise AssertionError("a missing threshold must be an error naming its key")
