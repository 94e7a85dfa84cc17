"""The ``deeptheory`` command (and ``python -m deeptheory``): one name for the project's
commands, each a module's own ``main`` with its own ``--help``."""

from __future__ import annotations

import importlib
import sys

# name -> (module whose main(argv) runs it, one line of help). Modules load only when asked
# for: bench imports torch, which the help should not wait for.
COMMANDS = {
    "audit": ("deeptheory.audit", "check every artifact of a build (data, results, targets, runs) without training"),
    "bench": ("deeptheory.bench", "measure training speed: the packed step, one-model loaders, the paper profile's time"),
    "compare": ("deeptheory.compare", "a build's claims table against the reference one: verdicts that moved"),
    "docs": ("deeptheory.docs", "rewrite README.md's target list and the catalog's Summary from the targets' registry"),
    "timeline": ("deeptheory.timeline", "where a finished build's time went: wall and core-seconds per kind of job"),
}

USAGE = "usage: deeptheory COMMAND [options]   (deeptheory COMMAND --help for its options)"


def help_text() -> str:
    width = max(map(len, COMMANDS))
    rows = [f"  {name:{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    return "\n".join([USAGE, "", "Reproduce the CBMM 'Theory of Deep Learning' memos; the builds themselves run",
                      "with snakemake (README.md). Commands:", *rows])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(help_text())
        return 0
    if not argv or argv[0] not in COMMANDS:
        said = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"deeptheory: {said}; commands: {', '.join(COMMANDS)} (deeptheory --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0
