"""scikit-learn's bundled handwritten digits as a uint8 image array."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's 8x8 handwritten digits (the UCI optical recognition test set).

    Returns
    -------
    images : ndarray of uint8, shape (1797, 8, 8)
        Grey levels 0..16 (each pixel counts the set pixels of a 4x4 block of the original
        32x32 bitmap), not 0..255.
    labels : ndarray of int64, shape (1797,)
        Digits 0..9.

    Both arrays are fresh and writable.

    References
    ----------
    .. [1] E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
       Learning Repository, 1998. https://doi.org/10.24432/C50P49
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
