"""The config as the workflow reads it, each problem in one line before any job.

The workflow's ``config/config.yaml``, then each ``--configfile`` in turn, then the
``--config key=value`` overrides, merged as Snakemake merges them and checked against
``workflow/schemas/config.schema.yaml``. A problem names the file it came from (or
``--config``), the key, the bad value and what is allowed, instead of jsonschema's dump
of the whole schema and config. The one loader: the workflow (the root's Snakefile),
``deeptheory audit``, ``deeptheory bench`` and the tests all read the config through here.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path

import yaml

from .grid import ConfigError, plan
from .schema import REPO, SCHEMA
BASE = "config/config.yaml"  # the workflow's own config file, beside its Snakefile
DEFAULT_CONFIG = REPO / BASE  # this checkout's
OVERRIDES = "--config"
SHORT = reprlib.Repr()  # a value in a message: a long one cut short, never a whole section
SHORT.maxstring, SHORT.maxother, SHORT.maxlist, SHORT.maxdict = 60, 60, 8, 4


def read_yaml(path) -> dict:
    """A config file's keys; a file that does not parse is named with the line and column."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        why = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"config file {path}{where}: not valid YAML: {why}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path}: holds a {type(data).__name__}, not config keys")
    return data or {}


def merge(base: dict, update: dict) -> dict:
    """Snakemake's merge of config files: nested mappings merge, anything else replaces."""
    out = dict(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(entries) -> dict:
    """``--config key=value`` items, each value typed as Snakemake types it."""
    from snakemake.cli import parse_config

    try:
        return parse_config(list(entries or ())) or {}
    except ValueError as err:
        raise ConfigError(f"{OVERRIDES}: {err}") from None


def load(files, overrides=None) -> dict:
    """The config merged from ``files`` (the workflow's config.yaml first, then each
    --configfile) and the --config ``overrides``, validated, with the schema's defaults."""
    return load_sources([(str(f), read_yaml(f)) for f in files] + ([(OVERRIDES, overrides)] if overrides else []))


def load_config(configfiles=(), base: Path = DEFAULT_CONFIG, overrides=None) -> dict:
    """The config a build sees: ``base`` (this checkout's config/config.yaml unless given),
    each of ``configfiles`` over it, then the --config ``overrides``."""
    return load([base, *configfiles], overrides)


def load_sources(sources) -> dict:
    """The config merged from ``sources`` ((name, keys) of each file and the overrides, in
    merge order), validated, with the schema's defaults."""
    config = {}
    for _, data in sources:
        config = merge(config, data)
    validate(config, sources)
    return config


def validate(config: dict, sources=()) -> None:
    """Check ``config`` against the schema (filling in its defaults). ``sources``: (name,
    keys) of each file and the overrides, in merge order, to say where a bad key came from."""
    import jsonschema
    from snakemake.utils import validate as schema_validate

    try:
        schema_validate(config, str(SCHEMA))
    except Exception as err:  # snakemake's WorkflowError, raised while handling jsonschema's error
        cause = err.__cause__ or err.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise ConfigError(describe(cause, sources)) from None
    try:  # what the schema cannot say (N within the data set, a recipe that exists, ...)
        plan(config)
    except ConfigError as err:
        key = re.match(r"config key '?([\w.+-]+)'?", str(err))
        origin = where(key[1].split("."), sources) if key else None
        raise ConfigError(f"{err}" + (f" (set in {origin})" if origin else "")) from None


def workflow_sources(workflow) -> list:
    """(name, keys) of what a running workflow merged: its config file, each --configfile
    (Snakemake has parsed them all before the Snakefile runs) and --config."""
    base = Path(workflow.basedir) / BASE
    settings = workflow.config_settings
    files = [(str(f), read_yaml(f)) for f in settings.configfiles]
    return [(str(base), read_yaml(base)), *files] + ([(OVERRIDES, settings.config)] if settings.config else [])


def describe(err, sources=()) -> str:
    """One line for a jsonschema error: where it came from, the key, the value, what is allowed."""
    if err.context:  # oneOf/anyOf: the alternative of the value's own type says most
        import jsonschema

        closest = [e for e in err.context if e.validator != "type"] or err.context
        err = jsonschema.exceptions.best_match(closest) or err
    path = [str(p) for p in err.absolute_path]
    value, rule, what = err.instance, err.validator, err.validator_value
    short = SHORT.repr
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = sorted((err.schema.get("properties") or {}))
        extra = [k for k in value if k not in allowed]
        path, value = path + [str(extra[0])], value[extra[0]] if extra else None
        why = f"unknown key (value {short(value)}); allowed here: {', '.join(allowed) or 'none'}"
    elif rule == "enum":
        why = f"{short(value)} is not allowed; allowed: {', '.join(map(str, what))}"
    elif rule == "uniqueItems":
        repeated = sorted({v for v in value if value.count(v) > 1}, key=str)
        why = f"{short(value)} repeats {', '.join(map(str, repeated))}; give each value once"
    elif rule == "type":
        why = f"{short(value)} is not of type {what if isinstance(what, str) else ' or '.join(what)}"
    elif rule in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[rule]
        why = f"{short(value)} is not allowed; allowed: {op} {what}"
    elif rule == "pattern":
        why = f"{short(value)} is not allowed; allowed: strings matching {what}"
    else:
        why = " ".join(err.message.split())
        why = why if len(why) < 200 else why[:200] + "..."
    key = ".".join(path) or "(top level)"
    origin = where(path, sources)
    return f"config key {key}: {why}" + (f" (set in {origin})" if origin else "")


def where(path: list, sources) -> str | None:
    """The last source (merge order) that sets the key at ``path``."""
    found = None
    for name, data in sources:
        node = data
        for p in path:
            if isinstance(node, dict) and p in node:
                node = node[p]
            elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
                node = node[int(p)]
            else:
                break
        else:
            found = name
    return str(found) if found is not None else None
