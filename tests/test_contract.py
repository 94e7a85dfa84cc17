"""Every target in every place that lists targets, and nothing else there: the registry
(src/deeptheory/targets/__init__.py), its family's BUILD (and ANALYZE, for a target that
analyses trained nets), both profiles of config/config.yaml, docs/CATALOG.md (its Summary
table and a section of its own under A or B), README.md's target table and a caption
workflow/report/<id>.rst. A place that lacks a target, or lists one the registry does not
know, is named with the target."""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
from dataclasses import dataclass, replace

import pytest
import yaml

from conftest import ROOT
from deeptheory import targets
from deeptheory.targets import REGISTRY

PROFILES = ("quick", "paper")  # the profiles of config/config.yaml: each lists every target
REPORT_PAGES = {"target", "claims", "timeline"}  # workflow/report/ pages that are not one target's caption


@dataclass(frozen=True)
class Checkout:
    """What the places say, read once; a test edits a copy."""
    registry: dict   # id -> Target
    build: dict      # family -> ids of its BUILD
    analyze: dict    # family -> ids of its ANALYZE
    config: dict
    catalog: str
    readme: str
    captions: frozenset


def read_checkout() -> Checkout:
    # every module of the package with a BUILD table, named by an entry or not
    modules = {m.name: importlib.import_module(f"deeptheory.targets.{m.name}")
               for m in pkgutil.iter_modules(targets.__path__)}
    modules = {f: m for f, m in modules.items() if hasattr(m, "BUILD")}
    return Checkout(
        registry=dict(REGISTRY),
        build={f: set(m.BUILD) for f, m in modules.items()},
        analyze={f: set(getattr(m, "ANALYZE", {})) for f, m in modules.items()},
        config=yaml.safe_load((ROOT / "config" / "config.yaml").read_text()),
        catalog=(ROOT / "docs" / "CATALOG.md").read_text(),
        readme=(ROOT / "README.md").read_text(),
        captions=frozenset(p.stem for p in (ROOT / "workflow" / "report").glob("*.rst")) - REPORT_PAGES)


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
    for family in sorted(c.build.keys() | {entry.family for entry in c.registry.values()}):
        mine = {t for t, entry in c.registry.items() if entry.family == family}
        out[f"BUILD of deeptheory/targets/{family}.py"] = (c.build.get(family, set()), mine)
        out[f"ANALYZE of deeptheory/targets/{family}.py"] = (c.analyze.get(family, set()), mine & analyses)
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
    out["README.md target table"] = ([row[0] for row in table_rows(c.readme, "| target | source | what |")], every)
    out["workflow/report/<id>.rst captions"] = (c.captions, every)
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
def drop_family_entry(table):
    def drop(c, t):
        tables = copy.deepcopy(getattr(c, table))
        tables[c.registry[t].family].discard(t)
        return replace(c, **{table: tables})
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
    "BUILD of deeptheory/targets/curves.py": ("t3-sgdl", drop_family_entry("build")),
    "ANALYZE of deeptheory/targets/robustness.py": ("t3-margins", drop_family_entry("analyze")),
    "config/config.yaml profiles.quick.targets": ("t3-err-vs-w", drop_config("quick", "targets")),
    "config/config.yaml profiles.paper.targets": ("t3-archs", drop_config("paper", "targets")),
    "config/config.yaml profiles.quick.synthetic": ("t3-minnorm", drop_config("quick", "synthetic")),
    "config/config.yaml profiles.paper.synthetic": ("m100-balance", drop_config("paper", "synthetic")),
    "docs/CATALOG.md Summary table, kind data set": ("t3-norms", drop_line("catalog", r"^\| {t} \|.*\n")),
    "docs/CATALOG.md Summary table, kind synthetic": ("t3-langevin-2d", drop_line("catalog", r"^\| {t} \|.*\n")),
    "docs/CATALOG.md headings of A. Data-set targets": ("t3-poly", drop_line("catalog", r"^### {t}\n")),
    "docs/CATALOG.md headings of B. Synthetic targets": ("slides-nonseparable",
                                                        drop_line("catalog", r"^### {t}\n")),
    "README.md target table": ("m90-normalization", drop_line("readme", r"^\| `{t}` \|.*\n")),
    "workflow/report/<id>.rst captions": ("t3-flatness", lambda c, t: replace(c, captions=c.captions - {t})),
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
    assert {line.split("listed in ")[1].split(",")[0] for line in said} >= {
        "README.md target table", "workflow/report/<id>.rst captions", "BUILD of deeptheory/targets/robustness.py",
        "config/config.yaml profiles.quick.targets", "config/config.yaml profiles.paper.targets"}


def test_a_target_in_the_wrong_part_of_the_catalog_is_named():
    c = read_checkout()
    moved = c.catalog.replace("### t3-minnorm\n", "", 1).replace("### t3-sgdl\n", "### t3-sgdl\n\n### t3-minnorm\n", 1)
    assert sorted(problems(replace(c, catalog=moved))) == [
        "t3-minnorm: listed in docs/CATALOG.md headings of A. Data-set targets, but the registry does not put it "
        "there", "t3-minnorm: missing from docs/CATALOG.md headings of B. Synthetic targets"]
