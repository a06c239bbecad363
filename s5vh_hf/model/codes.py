"""Binary codes as bytes: packing ±1 codes into ``uint8`` rows and back (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """±1 (or 0/1, or bool) codes ``[N, L]`` → packed ``uint8`` ``[N, L/8]``, most significant bit first
    (bit = 1 where the code is +1)."""
    return np.packbits(np.asarray(codes) > 0, axis=-1)


def unpack_codes(packed: np.ndarray, dtype: Any = np.int8) -> np.ndarray:
    """Packed ``uint8`` ``[N, L/8]`` → ±1 codes ``[N, L]`` of ``dtype``; the inverse of :func:`pack_codes`."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=-1).astype(dtype) * 2 - 1
