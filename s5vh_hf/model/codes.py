"""Binary codes: the code lengths a model may have, and packing ±1 codes into ``uint8`` rows and back (numpy
only)."""

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


CODE_LENGTHS = (8, 16, 32, 64, 128)
"""The code lengths L a model may have: whole bytes, and a Hadamard matrix of size L for the hash centers."""


def check_code_length(code_length: Any) -> int:
    """The one code-length rule (:data:`CODE_LENGTHS`), for the config and for every path that makes hash centers
    (checked before any clustering). Returns ``code_length``; raises ``ValueError`` otherwise."""
    if isinstance(code_length, bool) or code_length not in CODE_LENGTHS:
        raise ValueError(f"S5VHConfig.code_length must be one of {CODE_LENGTHS} (bytes of codes, and a Hadamard "
                         f"matrix of that size for the hash centers), got {code_length!r}")  # fmt: skip
    return int(code_length)
