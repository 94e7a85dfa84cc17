"""Job logging: progress goes to the job's log file and to stderr, where Snakemake shows it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup(log_path: str | Path | None, name: str = "") -> logging.Logger:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s " + (f"[{name}] " if name else "") + "%(message)s",
                        datefmt="%H:%M:%S")
    return logging.getLogger("deeptheory")
