"""Build the committed Fashion-MNIST subset from the Debian package's files.

Selection: with ``numpy.random.default_rng(0)``, for the train split then the test (t10k) split,
and for each class 0..9 in turn, draw ``per_class`` indices without replacement among that
class's images (1,000 per class from train, 200 per class from t10k); the chosen indices are then
sorted, so the subset keeps the original order. The IDX files are written gzip-compressed with
``compresslevel=9`` and ``mtime=0`` under the original names into ``fashion-mnist-subset/``, and
``SHA256SUMS`` lists the sha256 of the *decompressed* bytes of the subset and of the four full
files (Debian re-compressed the originals, so only the decompressed content identifies them).

Usage (from the repository root; needs only numpy)::

    apt-get install dataset-fashion-mnist
    python datasets/make_fashion_mnist_subset.py [--source /usr/share/datasets/fashion-mnist]

References
----------
.. [1] H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
   Machine Learning Algorithms", arXiv:1708.07747, 2017.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

SPLITS = {  # split -> (images, labels, images kept per class)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1000),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 200),
}
SEED = 0
COMPRESSLEVEL = 9
HERE = Path(__file__).resolve().parent


def read_idx(path: Path) -> tuple[np.ndarray, bytes]:
    """Return the uint8 array in the gzip-compressed IDX file ``path`` and its decompressed
    bytes."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if data[:3] != b"\x00\x00\x08" or len(data) != 4 + 4 * ndim + int(np.prod(shape)):
        raise ValueError(f"{path} is not a valid unsigned-byte IDX file")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape), data


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes (big-endian header, then the C-order payload) of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def subset_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` images drawn without replacement from each class 0..9."""
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)
    ]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    subset_dir = args.out / "fashion-mnist-subset"
    subset_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    subset_sums, full_sums = [], []
    for images_name, labels_name, per_class in SPLITS.values():
        images, images_raw = read_idx(args.source / f"{images_name}.gz")
        labels, labels_raw = read_idx(args.source / f"{labels_name}.gz")
        keep = subset_indices(labels, per_class, rng)
        for name, full_raw, part in (
            (images_name, images_raw, images[keep]),
            (labels_name, labels_raw, labels[keep]),
        ):
            raw = encode_idx(part)
            packed = gzip.compress(raw, compresslevel=COMPRESSLEVEL, mtime=0)
            (subset_dir / f"{name}.gz").write_bytes(packed)
            subset_sums.append(f"{hashlib.sha256(raw).hexdigest()}  fashion-mnist-subset/{name}")
            full_sums.append(f"{hashlib.sha256(full_raw).hexdigest()}  fashion-mnist/{name}")
            print(f"{name}: {part.shape} -> {len(packed)} bytes compressed")
    (args.out / "SHA256SUMS").write_text(
        "# sha256 of the DECOMPRESSED IDX bytes (check with: zcat FILE.gz | sha256sum).\n"
        "# fashion-mnist-subset/: the files here; fashion-mnist/: the full Fashion-MNIST files\n"
        "# (Zalando's originals and Debian's dataset-fashion-mnist decompress to the same bytes).\n"
        + "\n".join(subset_sums + full_sums)
        + "\n",
        encoding="ascii",
    )


if __name__ == "__main__":
    main()
