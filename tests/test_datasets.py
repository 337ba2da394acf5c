"""Tests for lightvision.datasets: digits, Fashion-MNIST (bundled subset, full set) and IDX."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightvision.datasets import (
    FASHION_MNIST_CLASSES,
    fashion_mnist_dir,
    load_digits,
    load_fashion_mnist,
)
from lightvision.datasets import fashion_mnist as fm
from lightvision.datasets._idx import parse_idx

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
needs_full = pytest.mark.skipif(
    not fm.DEBIAN_DIR.is_dir(),
    reason=f"full Fashion-MNIST not installed ({fm.DEBIAN_DIR}; apt-get install "
    "dataset-fashion-mnist)",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding written independently of the library's parser."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_tiny(directory: Path, *, n: int = 7, gz: bool = True, seed: int = 0):
    """Write the four IDX files of a tiny data set (n train, n + 1 test images) in directory."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count in (("train", n), ("test", n + 1)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        for name, array in zip(FILES[split], (images, labels), strict=True):
            raw = idx_bytes(array)
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (directory / name).write_bytes(raw)
        out[split] = (images, labels)
    return out


@pytest.fixture
def no_full(monkeypatch, tmp_path):
    """No full data set anywhere: env var unset, Debian location nonexistent."""
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian-here")


def test_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    assert set(np.unique(labels)) == set(range(10))


@pytest.mark.parametrize(("split", "per_class"), [("train", 1000), ("test", 200)])
def test_bundled_subset_shapes_and_stratification(split, per_class):
    images, labels = load_fashion_mnist(split, source="bundled")
    assert images.shape == (10 * per_class, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10 * per_class,) and labels.dtype == np.int64
    assert images.max() == 255 and images.min() == 0
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [per_class] * 10)
    assert len(FASHION_MNIST_CLASSES) == 10


def test_auto_without_full_falls_back_to_bundled(no_full):
    assert fashion_mnist_dir() == fashion_mnist_dir(source="bundled")
    assert fashion_mnist_dir().name == "fashion-mnist-subset"
    assert load_fashion_mnist("test")[0].shape == (2000, 28, 28)


@needs_full
def test_subset_rows_come_from_full_set(monkeypatch):
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    assert fashion_mnist_dir(source="full") == fm.DEBIAN_DIR
    spec = importlib.util.spec_from_file_location(
        "make_fashion_mnist_subset", REPO / "datasets" / "make_fashion_mnist_subset.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(script.SEED)
    for split, per_class in (("train", 1000), ("test", 200)):  # the script's order
        full_x, full_y = load_fashion_mnist(split, source="full")
        sub_x, sub_y = load_fashion_mnist(split, source="bundled")
        keep = script.subset_indices(full_y, per_class, rng)
        assert np.all(np.diff(keep) > 0)  # original order kept
        np.testing.assert_array_equal(sub_x, full_x[keep])
        np.testing.assert_array_equal(sub_y, full_y[keep])


@pytest.mark.parametrize("gz", [True, False])
def test_parse_tiny_idx_files(tmp_path, gz):
    tiny = write_tiny(tmp_path, gz=gz)
    for split in ("train", "test"):
        images, labels = load_fashion_mnist(split, path=tmp_path, verify=False)
        np.testing.assert_array_equal(images, tiny[split][0])
        np.testing.assert_array_equal(labels, tiny[split][1])
        assert labels.dtype == np.int64


def test_parse_idx_validation():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(array)
    np.testing.assert_array_equal(parse_idx(raw, ndim=3, name="x", fix="F"), array)
    with pytest.raises(ValueError, match="magic"):
        parse_idx(raw, ndim=1, name="x", fix="F")
    with pytest.raises(ValueError, match="length"):
        parse_idx(raw[:-1], ndim=3, name="x", fix="F")
    with pytest.raises(ValueError, match="length"):
        parse_idx(raw + b"\0", ndim=3, name="x", fix="F")
    with pytest.raises(ValueError, match="too short"):
        parse_idx(raw[:6], ndim=3, name="x", fix="F")


def test_explicit_path_beats_env_var(tmp_path, monkeypatch):
    write_tiny(tmp_path / "env", n=3)
    write_tiny(tmp_path / "explicit", n=5)
    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path / "env"))
    assert fashion_mnist_dir() == tmp_path / "env"
    assert fashion_mnist_dir(source="full") == tmp_path / "env"
    assert load_fashion_mnist(verify=False)[0].shape == (3, 28, 28)
    assert fashion_mnist_dir(path=tmp_path / "explicit") == tmp_path / "explicit"
    assert load_fashion_mnist(path=str(tmp_path / "explicit"), verify=False)[0].shape[0] == 5
    assert fashion_mnist_dir(source="bundled").name == "fashion-mnist-subset"


def test_own_files_need_verify_false(tmp_path):
    write_tiny(tmp_path)
    with pytest.raises(ValueError, match="verify=False"):
        load_fashion_mnist(path=tmp_path)


def test_copy_of_subset_verifies(tmp_path):
    shutil.copytree(fashion_mnist_dir(source="bundled"), tmp_path / "copy")
    images, _ = load_fashion_mnist("test", path=tmp_path / "copy")
    np.testing.assert_array_equal(images, load_fashion_mnist("test", source="bundled")[0])


def test_corrupted_byte_in_subset_copy(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fashion_mnist_dir(source="bundled"), copy)
    file = copy / "t10k-images-idx3-ubyte.gz"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz") as info:
        load_fashion_mnist("test", path=copy)
    assert "apt-get install --reinstall dataset-fashion-mnist" in str(info.value)


def test_corrupted_bundled_subset_says_git_checkout(tmp_path, monkeypatch):
    shutil.copytree(fm._bundled_root(), tmp_path / "bundled")
    monkeypatch.setattr(fm, "_bundled_root", lambda: tmp_path / "bundled")
    file = tmp_path / "bundled" / "fashion-mnist-subset" / "t10k-labels-idx1-ubyte.gz"
    file.write_bytes(file.read_bytes()[:-5])
    with pytest.raises(ValueError, match="git checkout -- datasets/"):
        load_fashion_mnist("test", source="bundled")


def test_corrupted_pixel_fails_checksum(tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    bundled = fashion_mnist_dir(source="bundled")
    for name in FILES["test"]:
        raw = gzip.decompress((bundled / f"{name}.gz").read_bytes())
        if name.startswith("t10k-images"):
            raw = raw[:100] + bytes([raw[100] ^ 1]) + raw[101:]
        (copy / name).write_bytes(raw)
    with pytest.raises(ValueError, match="sha256") as info:
        load_fashion_mnist("test", path=copy)
    assert "verify=False" in str(info.value)
    assert load_fashion_mnist("test", path=copy, verify=False)[0].shape == (2000, 28, 28)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file(tmp_path, gz):
    write_tiny(tmp_path, gz=gz)
    file = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist(path=tmp_path, verify=False)


def test_bad_labels(tmp_path):
    write_tiny(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(7, 10, np.uint8)))
    with pytest.raises(ValueError, match="out of range"):
        load_fashion_mnist(path=tmp_path, verify=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(6, np.uint8)))
    with pytest.raises(ValueError, match="7 images but 6 labels"):
        load_fashion_mnist(path=tmp_path, verify=False)


def test_missing_dir_and_file(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_fashion_mnist(path=missing)
    monkeypatch.setenv(fm.ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=fm.ENV_VAR):
        fashion_mnist_dir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="path"):
        load_fashion_mnist(path=a_file)
    write_tiny(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist("test", path=tmp_path / "partial", verify=False)


def test_full_missing_mentions_apt(no_full):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(source="full")
    with pytest.raises(FileNotFoundError, match="apt-get"):
        fashion_mnist_dir(source="full")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")
    with pytest.raises(ValueError, match="source"):
        load_fashion_mnist(source="web")
    with pytest.raises(ValueError, match="source"):
        fashion_mnist_dir(source="web")
    with pytest.raises(ValueError, match="path"):
        load_fashion_mnist(path=tmp_path, source="bundled")
    with pytest.raises(TypeError, match="split"):
        load_fashion_mnist(0)
    with pytest.raises(TypeError, match="path"):
        load_fashion_mnist(path=3)
    with pytest.raises(TypeError, match="verify"):
        load_fashion_mnist(source="bundled", verify="yes")
    with pytest.raises(TypeError, match="source"):
        load_fashion_mnist(source=None)


@pytest.mark.parametrize(
    "loader", [lambda: load_fashion_mnist("test", source="bundled"), load_digits]
)
def test_returned_arrays_are_fresh_and_writable(loader):
    images, labels = loader()
    assert images.flags.writeable and labels.flags.writeable
    first = images.copy(), labels.copy()
    images[:] = 7
    labels[:] = 3
    again = loader()
    assert not np.shares_memory(again[0], images) and not np.shares_memory(again[1], labels)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])


def test_import_is_light():
    code = (
        "import sys, lightvision.datasets; "
        "print(any(m.split('.')[0] in ('torch', 'sklearn') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- random_state of the generators


def _generators():
    from lightvision.datasets import make_actions, make_cloud_scenes, make_semg

    return {
        "make_actions": lambda rs: make_actions(1, scenarios=(1,), n_frames=2,
                                                frame_size=(48, 64), random_state=rs).videos,
        "make_cloud_scenes": lambda rs: make_cloud_scenes(1, image_size=16, patch_size=16,
                                                          random_state=rs).images,
        "make_semg": lambda rs: make_semg(1, duration_s=0.2, random_state=rs).emg,
    }


@pytest.mark.parametrize("name", ["make_actions", "make_cloud_scenes", "make_semg"])
@pytest.mark.parametrize(("random_state", "error", "match"), [
    ("0", TypeError, "random_state must be None, an int"),
    (0.5, TypeError, "random_state must be None, an int"),
    (float("nan"), TypeError, "random_state must be None, an int"),
    (-1, ValueError, r"random_state must be an int in \[0, 2\*\*64\)"),
    ((5, -1.4), TypeError, "random_state as a sequence must be a non-empty 1-d sequence of ints"),
    ((5, -1), ValueError, "random_state must hold ints >= 0"),
    ((), TypeError, "random_state as a sequence"),
])
def test_generators_check_random_state(name, random_state, error, match):
    with pytest.raises(error, match=match):
        _generators()[name](random_state)


@pytest.mark.parametrize("name", ["make_actions", "make_cloud_scenes", "make_semg"])
def test_generators_accept_every_documented_seed(name):
    make = _generators()[name]
    reference = make(7)
    np.testing.assert_array_equal(make(np.int64(7)), reference)
    for seed in (np.random.SeedSequence(7), np.random.PCG64(7), np.random.default_rng(7),
                 np.random.RandomState(7), [7, 8], np.array([7, 8]), None):
        assert make(seed).shape == reference.shape
    np.testing.assert_array_equal(make(np.random.SeedSequence(7)), make(np.random.PCG64(7)))
