"""Fashion-MNIST loader: the full set when installed, else a committed stratified subset.

Nothing is downloaded. The full set comes from an explicit directory, the environment variable
``LIGHTVISION_FASHION_MNIST`` or the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``); a fixed stratified subset (1,000 train and 200 test
images per class) ships with lightvision so that benchmarks run everywhere and stay comparable.

References
----------
.. [1] H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
   Machine Learning Algorithms", arXiv:1708.07747, 2017.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ._idx import parse_idx, read_idx_bytes

__all__ = [
    "DEBIAN_DIR",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "fashion_mnist_dir",
    "load_fashion_mnist",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Class names indexed by label 0..9 (Xiao, Rasul, Vollgraf 2017)."""

ENV_VAR = "LIGHTVISION_FASHION_MNIST"
"""Environment variable naming a directory that holds the four Fashion-MNIST IDX files."""

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the full data set."""

_FILES = {  # split -> (images, labels) file names without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SOURCES = ("auto", "full", "bundled")
_SUBSET = "fashion-mnist-subset"
_CHECKSUMS = "SHA256SUMS"
_APT_HINT = (
    "Install the full set with `apt-get install dataset-fashion-mnist`, or set "
    f"{ENV_VAR} / pass path=... to a directory holding the four IDX files "
    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte; each may be .gz)."
)


def _bundled_root() -> Path:
    """Directory holding the committed data: ``lightvision/_bundled`` once installed from a
    wheel, ``<repo>/datasets`` in a source checkout or editable install."""
    package = Path(__file__).resolve().parents[1]
    for root in (package / "_bundled", package.parent / "datasets"):
        if (root / _SUBSET).is_dir() and (root / _CHECKSUMS).is_file():
            return root
    raise FileNotFoundError(
        f"lightvision's bundled Fashion-MNIST subset is missing (looked in {package / '_bundled'}"
        f" and {package.parent / 'datasets'}). Run `git checkout -- datasets/` in a source "
        "checkout, or reinstall lightvision."
    )


def _as_directory(value: str | os.PathLike[str], what: str) -> Path:
    directory = Path(value)
    if not directory.exists():
        raise FileNotFoundError(f"{what} {str(directory)!r} does not exist. {_APT_HINT}")
    if not directory.is_dir():
        raise NotADirectoryError(f"{what} {str(directory)!r} is not a directory. {_APT_HINT}")
    return directory


def _resolve(path: str | os.PathLike[str] | None, source: str) -> tuple[Path, str]:
    """Return the data directory and a fix-it hint for errors about its files."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str, os.PathLike or None, got {type(path).__name__}")
    if source == "bundled":
        if path is not None:
            raise ValueError("path cannot be combined with source='bundled'")
        return _bundled_root() / _SUBSET, (
            "Restore the bundled subset with `git checkout -- datasets/` in a source checkout "
            "of lightvision, or reinstall lightvision."
        )
    own_files = (
        "Replace it with an intact copy (e.g. `apt-get install --reinstall "
        f"dataset-fashion-mnist` provides one in {DEBIAN_DIR})."
    )
    if path is not None:
        return _as_directory(path, "path"), own_files
    env = os.environ.get(ENV_VAR)
    if env:
        return _as_directory(env, f"${ENV_VAR}"), own_files
    if DEBIAN_DIR.is_dir():
        return DEBIAN_DIR, "Reinstall it with `apt-get install --reinstall dataset-fashion-mnist`."
    if source == "full":
        raise FileNotFoundError(
            f"The full Fashion-MNIST data set was not found: no path= given, ${ENV_VAR} is "
            f"unset and {DEBIAN_DIR} does not exist. {_APT_HINT} "
            "source='auto' falls back to the bundled subset."
        )
    return _resolve(None, "bundled")


def fashion_mnist_dir(*, path: str | os.PathLike[str] | None = None, source: str = "auto") -> Path:
    """Directory that :func:`load_fashion_mnist` reads with these arguments.

    Parameters
    ----------
    path, source
        As in :func:`load_fashion_mnist`.

    Returns
    -------
    pathlib.Path
        The directory (benchmarks report it to say which data produced their numbers).
    """
    return _resolve(path, source)[0]


def _find_file(directory: Path, name: str, fix: str) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {directory / name}[.gz] not found. {fix} {_APT_HINT}"
    )


def _known_checksums(name: str) -> dict[str, str]:
    """Known sha256 digests (of the decompressed bytes) of file ``name``, digest -> entry."""
    sums = _bundled_root() / _CHECKSUMS
    known = {}
    for line in sums.read_text(encoding="ascii").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, entry = line.split(maxsplit=1)
            if entry.rsplit("/", 1)[-1] == name:
                known[digest] = entry
    return known


def _verify(file: Path, name: str, data: bytes, fix: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    known = _known_checksums(name)
    if digest not in known:
        raise ValueError(
            f"{file}: sha256 of the decompressed content is {digest}, which matches neither the "
            f"Fashion-MNIST file nor the bundled subset ({', '.join(sorted(known.values()))} in "
            f"{_CHECKSUMS}); the file is corrupt or not Fashion-MNIST. {fix} "
            "If these are your own IDX files, pass verify=False."
        )


def load_fashion_mnist(
    split: str = "train",
    *,
    path: str | os.PathLike[str] | None = None,
    source: str = "auto",
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST [1]_ (Zalando article images, 10 classes) from local IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"``: 60,000 images (1,000 per class in the bundled subset); ``"test"``: the t10k
        files, 10,000 images (200 per class in the subset).
    path : str or os.PathLike, optional
        Directory holding the four IDX files (gzip-compressed ``*.gz`` or uncompressed names).
    source : {"auto", "full", "bundled"}
        ``"auto"``: ``path``, else ``$LIGHTVISION_FASHION_MNIST``, else the Debian package's
        ``/usr/share/datasets/fashion-mnist``, else the bundled subset. ``"full"``: the same but
        never the subset (FileNotFoundError if none is found). ``"bundled"``: always the subset,
        so that numbers are comparable across machines. :func:`fashion_mnist_dir` tells which
        directory is used.
    verify : bool
        Check the sha256 of the decompressed bytes against ``SHA256SUMS`` (the full set and the
        subset); pass False for your own IDX files.

    Returns
    -------
    images : ndarray of uint8, shape (n, 28, 28)
        Grey levels 0..255 (0 = background). Files at ``path`` may have other image sizes when
        ``verify=False``.
    labels : ndarray of int64, shape (n,)
        Class indices 0..9, named by :data:`FASHION_MNIST_CLASSES`.

    Both arrays are freshly read, writable and owned by the caller; nothing is cached.

    Raises
    ------
    FileNotFoundError
        If a directory or file is missing (the message says how to get the data).
    ValueError
        On a bad ``split`` or ``source``, or a corrupt, truncated or unverified file.
    TypeError
        On arguments of the wrong type.

    References
    ----------
    .. [1] H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
       Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.

    Examples
    --------
    >>> images, labels = load_fashion_mnist("test", source="bundled")
    >>> images.shape, images.dtype, labels.shape, labels.dtype
    ((2000, 28, 28), dtype('uint8'), (2000,), dtype('int64'))
    """
    if not isinstance(split, str):
        raise TypeError(f"split must be a str, got {type(split).__name__}")
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(verify, bool | np.bool_):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
    directory, fix = _resolve(path, source)
    arrays = []
    for name, ndim in zip(_FILES[split], (3, 1), strict=True):
        file = _find_file(directory, name, fix)
        data = read_idx_bytes(file, fix=fix)
        arrays.append(parse_idx(data, ndim=ndim, name=str(file), fix=fix))
        if verify:
            _verify(file, name, data, fix)
    images, labels = arrays
    if len(images) != len(labels):
        raise ValueError(
            f"{directory}: {len(images)} images but {len(labels)} labels for split {split!r}; "
            f"the files do not belong together. {fix}"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"{directory}: label {int(labels.max())} out of range 0..9 for split {split!r}. {fix}"
        )
    return images, labels.astype(np.int64)
