"""Compare a build's claims table with a reference one: what moved.

``python -m deeptheory.compare results/claims.csv`` reads the build's ``claims.csv`` beside
the reference kept in the repository (``reference/<profile>/claims.csv``, with the commit,
machine and wall time of the build that made it in ``reference/<profile>/README.md``) and
prints the verdict counts of both, every claim whose verdict moved, claims only one side
has, and with ``--numbers`` every claim whose measured text changed. ``--strict`` exits 1
when a verdict moved or a claim appeared or vanished, so a script can stop on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
VERDICTS = ("held", "refuted", "inconclusive")


def read(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False)
    missing = {"id", "verdict", "reason", "measured"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a claims table of verdicts (lacks {sorted(missing)})")
    return table.set_index("id")


def moved(build: pd.DataFrame, ref: pd.DataFrame) -> dict[str, pd.DataFrame | list[str]]:
    """The differences: verdicts that moved, claims on one side only, measured texts that changed."""
    both = build.index.intersection(ref.index)
    b, r = build.loc[both], ref.loc[both]
    verdict = (b["verdict"] != r["verdict"]) | (b["reason"] != r["reason"])
    return {"verdicts": pd.DataFrame({"reference": r["verdict"] + r["reason"].map(lambda x: f" ({x})" if x else ""),
                                      "build": b["verdict"] + b["reason"].map(lambda x: f" ({x})" if x else "")})[verdict],
            "numbers": pd.DataFrame({"reference": r["measured"], "build": b["measured"]})[b["measured"] != r["measured"]],
            "added": sorted(set(build.index) - set(ref.index)), "removed": sorted(set(ref.index) - set(build.index))}


def counts(table: pd.DataFrame) -> str:
    n = table["verdict"].value_counts()
    return ", ".join(f"{int(n.get(v, 0))} {v}" for v in VERDICTS)


def report(build: pd.DataFrame, ref: pd.DataFrame, numbers: bool = False) -> tuple[str, bool]:
    """The text to print, and whether any verdict moved or any claim appeared or vanished."""
    d = moved(build, ref)
    lines = [f"reference: {len(ref)} claims ({counts(ref)})", f"build:     {len(build)} claims ({counts(build)})"]
    lines += [f"verdict moved  {cid}: {row.reference} -> {row.build}" for cid, row in d["verdicts"].iterrows()]
    lines += [f"only in build  {cid}: {build.loc[cid, 'verdict']}" for cid in d["added"]]
    lines += [f"only in reference  {cid}: {ref.loc[cid, 'verdict']}" for cid in d["removed"]]
    if numbers:
        lines += [f"measured moved  {cid}:\n    reference: {row.reference}\n    build:     {row.build}"
                  for cid, row in d["numbers"].iterrows()]
    changed = bool(len(d["verdicts"]) or d["added"] or d["removed"])
    lines.append("no verdict moved" if not changed else
                 f"{len(d['verdicts'])} verdict(s) moved, {len(d['added'])} claim(s) new, {len(d['removed'])} gone")
    return "\n".join(lines), changed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("claims", type=Path, nargs="?", default=Path("results/claims.csv"),
                        help="the build's claims table (default results/claims.csv)")
    parser.add_argument("--reference", type=Path, default=REFERENCE / "quick" / "claims.csv",
                        help="the reference claims table (default reference/quick/claims.csv)")
    parser.add_argument("--numbers", action="store_true", help="also list claims whose measured numbers changed")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a verdict moved or a claim came or went")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deeptheory compare", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        text, changed = report(read(args.claims), read(args.reference), args.numbers)
    except (OSError, ValueError) as err:
        print(f"deeptheory compare: {err}", file=sys.stderr)
        return 2
    print(text)
    return 1 if args.strict and changed else 0


if __name__ == "__main__":
    sys.exit(main())
