"""The config's schema (workflow/schemas/config.schema.yaml), read where code needs its
declarations: the loader validates against it (configcheck), and the claim thresholds are
exactly its ``claims`` properties (claims.Tolerances). Imports only yaml, so the workflow's
planning modules may read it."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TYPES = {"number": float, "integer": int}  # a JSON-schema type -> the Python type a value is read as


@functools.cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def claims_fields() -> dict:
    """Each claim threshold the schema declares (config key ``claims.<name>``) -> its type."""
    return {name: TYPES[prop["type"]] for name, prop in schema()["properties"]["claims"]["properties"].items()}
