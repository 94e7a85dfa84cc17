"""README.md's list of targets and docs/CATALOG.md's Summary table, made from the target registry
(``deeptheory.targets``): each target's id, source and one-line description stand once, in
its family module, and these tables are written from there.

``deeptheory docs`` rewrites the marked blocks in place; ``deeptheory docs --check`` names
the blocks that are out of date and exits 1 (tests/test_contract.py runs the same check).
Text outside the markers (the catalog's sections, the README's prose) is never touched.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

from .targets import REGISTRY, Target

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "deeptheory docs"
BEGIN = "<!-- begin {name}: written by `deeptheory docs`; edit the targets' entries -->"
END = "<!-- end {name} -->"


def cell(text: str) -> str:
    return text.replace("|", r"\|")


def target_list(registry: dict[str, Target], width: int = 100) -> str:
    """README.md: the ids of each kind, in lines that fit ``width`` (README's own rule); each
    target's source and description are in the catalog's Summary."""
    out = []
    for label, trains in [("Data-set targets", True), ("Synthetic targets", False)]:
        ids = [f"`{t.id}`" for t in registry.values() if t.trains == trains]
        out += textwrap.wrap(f"{label} ({len(ids)}): " + ", ".join(ids) + ".", width, break_on_hyphens=False) + [""]
    return "\n".join(out[:-1])


def summary_table(registry: dict[str, Target]) -> str:
    """docs/CATALOG.md's Summary: every target, its source, kind (its section, A or B), what it
    shows and the module that declares and builds it."""
    rows = [f"| {t.id} | {cell(t.source)} | {'data set' if t.trains else 'synthetic'} | {cell(t.what)} | "
            f"targets/{t.family}.py |" for t in registry.values()]
    return "\n".join(["| id | source | kind | what | module |", "|---|---|---|---|---|", *rows])


# file (from the repository root) -> {block name: what writes it}
BLOCKS = {"README.md": {"target-list": target_list}, "docs/CATALOG.md": {"summary-table": summary_table}}


def fill(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` between its markers replaced by ``body``."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    found = re.search(re.escape(begin) + r"\n.*?" + re.escape(end), text, re.S)
    if not found:
        raise ValueError(f"no block '{name}': the lines {begin!r} ... {end!r} are missing")
    return text[:found.start()] + f"{begin}\n{body}\n{end}" + text[found.end():]


def rendered(path: str, text: str, registry: dict[str, Target] = REGISTRY) -> str:
    for name, make in BLOCKS[path].items():
        text = fill(text, name, make(registry))
    return text


def stale(root: Path = ROOT, texts: dict[str, str] | None = None, registry: dict[str, Target] = REGISTRY) -> list:
    """One line per file whose blocks differ from the registry's (``texts``: file -> its text,
    read from ``root`` where not given)."""
    texts = texts or {path: (root / path).read_text() for path in BLOCKS}
    return [f"{path}: {', '.join(BLOCKS[path])} out of date with the targets' registry; run `{COMMAND}`"
            for path, text in texts.items() if rendered(path, text, registry) != text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which blocks are out of date (exit 1 if any)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this checkout)")
    args = parser.parse_args(argv)
    if args.check:
        lines = stale(args.root)
        print("\n".join(lines) or "README.md and docs/CATALOG.md agree with the targets' registry")
        return 1 if lines else 0
    for path in BLOCKS:
        file = args.root / path
        text = file.read_text()
        new = rendered(path, text)
        if new != text:
            file.write_text(new)
            print(f"rewrote {path}")
    return 0
