"""Per-directory manifests of what the build wrote under ``results/``: one ``.manifest.json``
per folder, ``{file name: {sha256, size, recorded}}``, updated under a file lock each time a
file is written (``deeptheory.atomic``) or linked in (``runio.link_run``).

``deeptheory.audit`` compares every file under ``results/`` with its folder's manifest: a
file whose bytes changed since it was written, one the manifest lists but the disk lacks,
and one no manifest knows all show. Checkpoints (``results/checkpoints/``) are working
state, rewritten every epoch and deleted at the end of a run: they are not recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

NAME = ".manifest.json"
LOCK = ".manifest.lock"
ROOT_NAME = "results"            # files under a folder of this name are recorded ...
SKIP_DIRS = {"checkpoints"}      # ... except working state under these
# Files in a results folder that are not artifacts: the manifest itself, its lock and
# Snakemake's stamp in a directory output.
NOT_ARTIFACTS = {NAME, LOCK, ".snakemake_timestamp"}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recorded_here(path: str | os.PathLike) -> bool:
    """Whether a write to ``path`` belongs in a manifest: under a ``results`` folder, not
    under its checkpoints, and not one of the manifest's own files."""
    parts = Path(os.path.abspath(path)).parts
    if ROOT_NAME not in parts[:-1] or Path(path).name in NOT_ARTIFACTS:
        return False
    below = parts[len(parts) - 1 - parts[::-1].index(ROOT_NAME):]  # after the last "results"
    return not (set(below[1:-1]) & SKIP_DIRS)


@contextlib.contextmanager
def _locked(folder: Path):
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(folder: str | os.PathLike) -> dict:
    """The manifest of ``folder``: {file name: entry}; empty when there is none."""
    path = Path(folder) / NAME
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text()).get("files", {})
    except ValueError:
        return {}


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(fd: int) -> None:
    """Give a file made by tempfile.mkstemp (always 0600) the mode open() would have given
    it, 0666 less the umask: in a shared group folder the group can then read the results."""
    os.fchmod(fd, 0o666 & ~umask())


def _write(folder: Path, files: dict) -> None:
    # Not through deeptheory.atomic: that module records into manifests.
    fd, tmp = tempfile.mkstemp(prefix=f".{NAME}.", suffix=".tmp", dir=folder)
    try:
        follow_umask(fd)
        with os.fdopen(fd, "w") as f:
            json.dump({"files": files}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, folder / NAME)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def record(path: str | os.PathLike, sha256: str | None = None) -> None:
    """Record ``path`` as written now, with its sha256 (computed unless given)."""
    path = Path(path)
    if not recorded_here(path):
        return
    entry = {"sha256": sha256 or sha256_file(path), "size": path.stat().st_size,
             "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with _locked(path.parent):
        files = read(path.parent)
        files[path.name] = entry
        _write(path.parent, files)
