"""Reading IDX files (the MNIST / Fashion-MNIST format) with numpy.

An IDX file is a big-endian header -- two zero bytes, a type code (``0x08`` = unsigned byte),
the number of dimensions, then each dimension as an unsigned 32-bit integer -- followed by the
payload in C order. Files may be gzip-compressed; compression is detected from the content, not
the file name.

References
----------
.. [1] Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
   http://yann.lecun.com/exdb/mnist/ (section "File formats").
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


def read_idx_bytes(path: Path, *, fix: str) -> bytes:
    """Return the decompressed bytes of the IDX file ``path`` (gzip or raw).

    ``fix`` is appended to error messages and tells the user how to repair the file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` looks gzip-compressed but cannot be decompressed (corrupt or truncated).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}. {fix}") from None
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is a corrupt or truncated gzip file ({exc}). {fix}") from exc


def parse_idx(data: bytes, *, ndim: int, name: str, fix: str) -> np.ndarray:
    """Parse the decompressed bytes of an unsigned-byte IDX file.

    Parameters
    ----------
    data : bytes
        Decompressed file content.
    ndim : int
        Expected number of dimensions (3 for images, magic ``0x00000803``; 1 for labels, magic
        ``0x00000801``).
    name : str
        File name used in error messages.
    fix : str
        How to repair the file, appended to error messages.

    Returns
    -------
    ndarray of uint8, shape given by the header
        A fresh, writable, C-contiguous array (it does not share memory with ``data``).

    Raises
    ------
    ValueError
        On a wrong magic number, a truncated header or a payload whose length differs from the
        product of the dimensions.
    """
    expected_magic = (_UBYTE << 8) | ndim
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{name}: file too short for an IDX header ({len(data)} bytes, need {header_len}). "
            f"{fix}"
        )
    magic = int(np.frombuffer(data, dtype=">u4", count=1)[0])
    if magic != expected_magic:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimension(s)). {fix}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected_len = header_len + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected_len:
        raise ValueError(
            f"{name}: payload length mismatch: header says shape {shape} "
            f"({expected_len} bytes in all) but the file has {len(data)} bytes "
            f"(truncated or corrupt). {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape).copy()
