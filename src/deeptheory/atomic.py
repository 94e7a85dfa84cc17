"""Atomic file writes: a crash leaves either the old file or the new one, never half.

Every file written under ``results/`` (outside ``results/checkpoints/``) is also recorded,
with its sha256, in its folder's manifest (``deeptheory.manifest``), which
``deeptheory.audit`` checks the files against.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path

from . import manifest


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    A failed write (a full disk included) removes the temporary file and leaves ``path`` as
    it was; a full disk is reported naming the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    manifest.follow_umask(fd)  # writers open this file again (truncating): it keeps the mode
    os.close(fd)
    try:
        try:
            yield Path(tmp)
            os.replace(tmp, path)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, f"no space left on device while writing {path}: nothing was "
                                            f"written there (a previous version, if any, is unchanged); "
                                            f"free space and rerun") from err
            raise
        manifest.record(path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path, frame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_torch(path, obj) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_arrays(path, arrays: dict) -> None:
    """An analysis's arrays as one .npz (empty when it kept none), written atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def load_arrays(path) -> dict:
    """What ``save_arrays`` wrote."""
    import numpy as np

    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}
