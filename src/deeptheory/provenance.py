"""Provenance of one job: what ran, on what, from which code and data, for how long."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "numpy", "pandas", "matplotlib", "seaborn", "scipy", "snakemake", "dvc", "deeptheory")


def git_revision(cwd: Path | None = None) -> dict:
    """Commit of the code that ran, and whether the working tree differed from it."""
    here = Path(cwd or Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(device) -> dict:
    """The machine; torch's threads only for a job that computed with torch (a job that
    only tables and plots never imports it: its threads are None)."""
    torch = sys.modules.get("torch")
    info = {"device": str(device), "platform": platform.platform(), "host": socket.gethostname(),
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads() if torch else None}
    if torch and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def data_checksums(verified_json: Path | None) -> dict:
    if verified_json is None or not Path(verified_json).exists():
        return {}
    return json.loads(Path(verified_json).read_text())


def record(*, config: dict, seeds: dict, device, wall_s: float, data: dict, extra: dict | None = None) -> dict:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "seeds": seeds,
        "code": git_revision(),
        "data": data,
        "versions": versions(),
        "device": device_info(device),
        "wall_s": round(float(wall_s), 3),
        **(extra or {}),
    }
