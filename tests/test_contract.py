"""Every target in every place that lists targets, and nothing else there. A target
describes itself once, in its family module's ``TARGETS`` (src/deeptheory/targets/<family>.py),
which the registry reads without importing the module; the functions that entry names must
be the module's; both profiles of config/config.yaml and docs/CATALOG.md (a section of its
own under A or B) list it. README.md's target table and the catalog's Summary are written
from the registry by ``deeptheory docs``, and checked here to be up to date; the report's
captions come from one template. A place that lacks a target, or lists one the registry does
not know, is named with the target."""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
from dataclasses import dataclass, replace

import pytest

from conftest import ROOT, checkout_config
from deeptheory import docs, targets
from deeptheory.targets import REGISTRY

PROFILES = ("quick", "paper")  # the profiles of config/config.yaml: each lists every target


@dataclass(frozen=True)
class Checkout:
    """What the places say, read once; a test edits a copy."""
    registry: dict   # id -> Target
    functions: dict  # family -> names of the module's functions
    config: dict
    catalog: str
    readme: str


def family_modules() -> dict:
    """Every module of deeptheory.targets, imported: family -> module."""
    return {m.name: importlib.import_module(f"deeptheory.targets.{m.name}")
            for m in pkgutil.iter_modules(targets.__path__)}


def read_checkout() -> Checkout:
    return Checkout(
        registry=dict(REGISTRY),
        functions={f: {name for name, value in vars(m).items() if callable(value)}
                   for f, m in family_modules().items()},
        config=checkout_config(),
        catalog=(ROOT / "docs" / "CATALOG.md").read_text(),
        readme=(ROOT / "README.md").read_text())


def section(text: str, heading: str) -> str:
    """The lines under a '## ' heading that starts with ``heading``, up to the next one."""
    start = re.search(rf"^## {re.escape(heading)}.*$", text, re.M)
    assert start, f"no section '## {heading}'"
    end = re.search(r"^## ", text[start.end():], re.M)
    return text[start.end(): start.end() + end.start() if end else None]


def table_rows(text: str, header: str) -> list:
    """The cells of each row of the table whose header row starts with ``header``."""
    rows = text[text.index(header):].splitlines()[2:]
    rows = rows[: next((i for i, r in enumerate(rows) if not r.startswith("|")), len(rows))]
    return [[cell.strip().strip("`") for cell in r.strip("|").split("|")] for r in rows]


def summary_ids(catalog: str) -> dict:
    """kind -> ids of the catalog's Summary table."""
    kinds = {}
    for tid, _, kind, *_ in table_rows(section(catalog, "Summary"), "| id | source | kind |"):
        kinds.setdefault(kind, []).append(tid)
    return kinds


def heading_ids(catalog: str, part: str) -> list:
    return re.findall(r"^### (.+?)\s*$", section(catalog, part), re.M)


def places(c: Checkout) -> dict:
    """place -> (the ids it lists, the ids it should list)."""
    trains = {t for t, entry in c.registry.items() if entry.trains}
    analyses = {t for t, entry in c.registry.items() if entry.unit}
    every = set(c.registry)
    out = {}
    for family in sorted({entry.family for entry in c.registry.values()}):
        mine = {t: entry for t, entry in c.registry.items() if entry.family == family}
        defined = c.functions.get(family, set())
        out[f"builders defined in deeptheory/targets/{family}.py"] = (
            {t for t, entry in mine.items() if entry.builder in defined}, set(mine))
        out[f"analyzers defined in deeptheory/targets/{family}.py"] = (
            {t for t, entry in mine.items() if entry.analyzer in defined}, {t for t in mine if t in analyses})
    for profile in PROFILES:
        keys = c.config["profiles"][profile]
        out[f"config/config.yaml profiles.{profile}.targets"] = (keys.get("targets") or {}, trains)
        out[f"config/config.yaml profiles.{profile}.synthetic"] = (keys.get("synthetic") or {}, every - trains)
    kinds = {"data set": trains, "synthetic": every - trains}
    listed = summary_ids(c.catalog)
    for kind in sorted(kinds.keys() | listed.keys()):  # a row of another kind is listed where nothing is wanted
        out[f"docs/CATALOG.md Summary table, kind {kind}"] = (listed.get(kind, []), kinds.get(kind, set()))
    out["docs/CATALOG.md headings of A. Data-set targets"] = (heading_ids(c.catalog, "A. Data-set"), trains)
    out["docs/CATALOG.md headings of B. Synthetic targets"] = (heading_ids(c.catalog, "B. Synthetic"), every - trains)
    return out


def problems(c: Checkout) -> list:
    """One line per target a place lacks, lists twice or lists unasked."""
    out = []
    for place, (listed, wanted) in places(c).items():
        listed = list(listed)
        out += [f"{t}: missing from {place}" for t in sorted(set(wanted) - set(listed))]
        out += [f"{t}: listed in {place}, but " + ("the registry does not know it" if t not in c.registry
                                                      else "the registry does not put it there")
                for t in sorted(set(listed) - set(wanted))]
        out += [f"{t}: listed twice in {place}" for t in sorted({t for t in listed if listed.count(t) > 1})]
    return out


def test_every_target_is_in_every_place_and_nothing_else_is():
    assert problems(read_checkout()) == []


def test_every_place_is_read():
    # A parser that found nothing would agree with a place that should list nothing only.
    assert [place for place, (listed, wanted) in places(read_checkout()).items() if wanted and not listed] == []


# One target taken out of one place in a copy: the failure names both.
def drop_function(role):
    def drop(c, t):
        functions = copy.deepcopy(c.functions)
        entry = c.registry[t]
        functions[entry.family].discard(getattr(entry, role))
        return replace(c, functions=functions)
    return drop


def drop_config(profile, kind):
    def drop(c, t):
        config = copy.deepcopy(c.config)
        del config["profiles"][profile][kind][t]
        return replace(c, config=config)
    return drop


def drop_line(field, pattern):
    def drop(c, t):
        text, n = re.subn(pattern.format(t=re.escape(t)), "", getattr(c, field), count=1, flags=re.M)
        assert n == 1, (field, t)
        return replace(c, **{field: text})
    return drop


DROPS = {  # place -> (a target it lists, how to drop it)
    "builders defined in deeptheory/targets/curves.py": ("t3-sgdl", drop_function("builder")),
    "analyzers defined in deeptheory/targets/robustness.py": ("t3-margins", drop_function("analyzer")),
    "config/config.yaml profiles.quick.targets": ("t3-err-vs-w", drop_config("quick", "targets")),
    "config/config.yaml profiles.paper.targets": ("t3-archs", drop_config("paper", "targets")),
    "config/config.yaml profiles.quick.synthetic": ("t3-minnorm", drop_config("quick", "synthetic")),
    "config/config.yaml profiles.paper.synthetic": ("m100-balance", drop_config("paper", "synthetic")),
    "docs/CATALOG.md Summary table, kind data set": ("t3-norms", drop_line("catalog", r"^\| {t} \|.*\n")),
    "docs/CATALOG.md Summary table, kind synthetic": ("t3-langevin-2d", drop_line("catalog", r"^\| {t} \|.*\n")),
    "docs/CATALOG.md headings of A. Data-set targets": ("t3-poly", drop_line("catalog", r"^### {t}\n")),
    "docs/CATALOG.md headings of B. Synthetic targets": ("slides-nonseparable",
                                                        drop_line("catalog", r"^### {t}\n")),
}


@pytest.mark.parametrize("place", sorted(DROPS))
def test_a_target_missing_from_one_place_is_named_with_the_place(place):
    tid, drop = DROPS[place]
    assert problems(drop(read_checkout(), tid)) == [f"{tid}: missing from {place}"]


def test_a_target_the_registry_lacks_is_named_in_every_place_that_lists_it():
    c = read_checkout()
    tid = "t3-perturb"
    said = problems(replace(c, registry={t: e for t, e in c.registry.items() if t != tid}))
    assert said and all(line.startswith(f"{tid}: listed in ") and line.endswith("the registry does not know it")
                        for line in said)
    assert {line.split("listed in ")[1].split(", but ")[0] for line in said} == {
        "config/config.yaml profiles.quick.targets", "config/config.yaml profiles.paper.targets",
        "docs/CATALOG.md Summary table, kind data set", "docs/CATALOG.md headings of A. Data-set targets"}


def test_a_target_in_the_wrong_part_of_the_catalog_is_named():
    c = read_checkout()
    moved = c.catalog.replace("### t3-minnorm\n", "", 1).replace("### t3-sgdl\n", "### t3-sgdl\n\n### t3-minnorm\n", 1)
    assert sorted(problems(replace(c, catalog=moved))) == [
        "t3-minnorm: listed in docs/CATALOG.md headings of A. Data-set targets, but the registry does not put it "
        "there", "t3-minnorm: missing from docs/CATALOG.md headings of B. Synthetic targets"]



# --- the registry as its family modules declare it --------------------------------------

def test_the_registry_reads_what_each_family_module_declares():
    # The source read (no import) and the imported module agree, entry for entry.
    for family, module in family_modules().items():
        declared = [replace(t, family=family) for t in getattr(module, "TARGETS", [])]
        assert targets.declared(family) == declared, family
    assert list(REGISTRY) == [t.id for t in REGISTRY.values()] and len(REGISTRY) == 31


def test_an_entry_names_an_analyzer_with_its_unit_and_only_on_a_data_set_target():
    entry = REGISTRY["t3-perturb"]
    with pytest.raises(ValueError, match="t3-perturb: an analyzer and its unit come together"):
        replace(entry, unit=None)
    with pytest.raises(ValueError, match="only a data-set target"):
        replace(entry, sweep=None)


def test_every_entry_states_its_claims_for_the_caption():
    assert [t for t, entry in REGISTRY.items() if not entry.claims.strip() or entry.claims.endswith(".")] == []


# --- README.md and the catalog's Summary, written from the registry ----------------------

def texts(c: Checkout) -> dict:
    return {"README.md": c.readme, "docs/CATALOG.md": c.catalog}


def test_the_generated_tables_are_up_to_date():
    # If this fails: run `deeptheory docs` and commit README.md and docs/CATALOG.md.
    assert docs.stale(texts=texts(read_checkout())) == []


@pytest.mark.parametrize("path, field, tid, pattern", [
    ("README.md", "readme", "m90-normalization", r"`{t}`,"),
    ("docs/CATALOG.md", "catalog", "t3-norms", r"^\| {t} \|.*\n")])
def test_a_table_that_lacks_a_target_names_the_file_and_the_command(path, field, tid, pattern):
    dropped = drop_line(field, pattern)(read_checkout(), tid)
    assert docs.stale(texts=texts(dropped)) == [
        f"{path}: {next(iter(docs.BLOCKS[path]))} out of date with the targets' registry; run `deeptheory docs`"]


def test_a_registry_change_makes_the_tables_that_show_it_stale():
    c = read_checkout()
    registry = {t: (replace(e, what=e.what + ", changed") if t == "t3-minnorm" else e) for t, e in REGISTRY.items()}
    assert [line.split(":")[0] for line in docs.stale(texts=texts(c), registry=registry)] == ["docs/CATALOG.md"]
    registry = {t: e for t, e in REGISTRY.items() if t != "t3-minnorm"}
    assert [line.split(":")[0] for line in docs.stale(texts=texts(c), registry=registry)] == [
        "README.md", "docs/CATALOG.md"]
