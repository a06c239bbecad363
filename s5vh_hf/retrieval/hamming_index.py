"""Binary codes and exact Hamming search (faiss vocabulary: ``add``, ``search(queries, k) → (distances, ids)``).

Codes are packed ``uint8`` rows of L/8 bytes (``np.packbits`` order, bit 1 = +1). Search is exact and ranks
ties by database id, as the evaluation protocol requires.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from ..model.codes import pack_codes, unpack_codes

__all__ = ["HammingIndex", "as_packed_codes", "unpack_codes"]


def as_packed_codes(codes: np.ndarray, code_length: int | None = None, name: str = "codes") -> np.ndarray:
    """Validate binary codes and return them packed, ``uint8`` ``[n, L/8]``.

    Accepts packed ``uint8`` ``[n, L/8]`` (when ``code_length`` is given, or when the array is ``uint8`` and
    ``code_length`` is None), ±1 integer or float codes ``[n, L]``, or ``bool`` codes ``[n, L]``.
    """
    array = np.asarray(codes)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, L] or packed [n, L/8], got shape {array.shape}")
    if array.dtype == np.uint8 and (code_length is None or array.shape[1] * 8 == code_length):
        return np.ascontiguousarray(array)
    if array.dtype == np.uint8 and code_length is not None and array.shape[1] != code_length:
        raise ValueError(
            f"{name} look packed with {array.shape[1]} bytes per code, but {code_length}-bit codes "
            f"({code_length // 8} bytes) are expected; encode them with a model of the same code length"
        )
    if array.dtype == bool:
        bits = array
    elif array.dtype.kind in "iuf":
        values = np.unique(array)
        if not np.all(np.isin(values, (-1, 1))):
            shown = ", ".join(str(v) for v in values[:6])
            raise ValueError(f"{name} must be binary (-1/+1, bool or packed uint8); found values {shown}")
        bits = array > 0
    else:
        raise TypeError(f"{name} must be a numeric or bool array, got dtype {array.dtype}")
    if bits.shape[1] % 8:
        raise ValueError(f"{name}: code length must be a multiple of 8, got {bits.shape[1]}")
    if code_length is not None and bits.shape[1] != code_length:
        raise ValueError(f"{name}: expected {code_length}-bit codes, got {bits.shape[1]} bits")
    return pack_codes(bits)


class HammingIndex:
    """Exact Hamming-distance index over packed binary codes.

    Backed by faiss' ``IndexBinaryFlat`` in its counting mode, which scans the database in id order and so
    returns equal distances by increasing id (checked against a stable sort in the tests).

    Example::

        index = HammingIndex(64)
        index.add(database_codes)                 # packed uint8 [N, 8], ±1 or bool [N, 64]
        distances, ids = index.search(query_codes, k=100)
    """

    def __init__(self, code_length: int) -> None:
        if not isinstance(code_length, int) or code_length < 8 or code_length % 8:
            raise ValueError(f"code_length must be a positive multiple of 8, got {code_length!r}")
        self.code_length = code_length
        self._index = faiss.IndexBinaryFlat(code_length)
        self._index.use_heap = False  # counting selection: exact, ties by id

    @classmethod
    def from_codes(cls, codes: np.ndarray, code_length: int | None = None) -> HammingIndex:
        """Build an index from codes in any accepted form (see :func:`as_packed_codes`)."""
        packed = as_packed_codes(codes, code_length)
        index = cls(packed.shape[1] * 8)
        index.add(packed)
        return index

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    def add(self, codes: np.ndarray) -> None:
        """Append codes; their ids continue from :attr:`ntotal`."""
        packed = as_packed_codes(codes, self.code_length)
        if len(packed):
            self._index.add(packed)

    def reset(self) -> None:
        """Remove every code."""
        self._index.reset()

    def codes(self) -> np.ndarray:
        """The stored packed codes, ``uint8`` ``[ntotal, L/8]``."""
        return faiss.vector_to_array(self._index.xb).reshape(self.ntotal, self.code_length // 8)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of every query.

        Returns:
            ``(distances, ids)``: ``int32`` and ``int64`` ``[Q, k]``, by increasing distance, ties by id.
        """
        packed = as_packed_codes(queries, self.code_length, name="queries")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if k > self.ntotal:
            raise ValueError(f"k = {k} is larger than the database ({self.ntotal} codes)")
        if len(packed) == 0:
            return np.empty((0, k), np.int32), np.empty((0, k), np.int64)
        distances, ids = self._index.search(packed, int(k))
        return distances.astype(np.int32, copy=False), ids

    def to_bytes(self) -> bytes:
        """The index in faiss' binary-index format."""
        return faiss.serialize_index_binary(self._index).tobytes()

    def save(self, path: str | os.PathLike) -> None:
        """Write the index in faiss' binary-index format, atomically and with every write error raised (a full
        disk leaves the old file as it was)."""
        from ..model.commits import write_file_atomically

        write_file_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> HammingIndex:
        """Read an index written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no Hamming index at {path}")
        try:
            raw = faiss.deserialize_index_binary(np.fromfile(path, dtype=np.uint8))
        except RuntimeError as error:
            raise ValueError(f"{path} is not a readable faiss binary index: {error}") from error
        if not isinstance(raw, faiss.IndexBinaryFlat):
            raise ValueError(f"{path} holds a {type(raw).__name__}, expected an IndexBinaryFlat")
        index = cls(int(raw.d))
        index.add(faiss.vector_to_array(raw.xb).reshape(raw.ntotal, raw.d // 8))
        return index


def ternary_codes(codes: np.ndarray) -> np.ndarray | None:
    """``codes`` as ``int8`` ``[n, L]`` when they are −1/0/+1 with at least one 0 (what ``sign_tie_rule="zero"``
    yields, as the authors' inference does), else ``None`` (binary codes take the Hamming index)."""
    array = np.asarray(codes)
    if array.ndim != 2 or array.dtype.kind not in "if" or array.dtype == np.uint8:
        return None
    if not np.isin(array, (-1, 0, 1)).all() or not (array == 0).any():
        return None
    return array.astype(np.int8)


def rank_by_inner_product(queries: np.ndarray, database: np.ndarray, k: int, chunk_size: int = 1024) -> np.ndarray:
    """Ids ``[Q, k]`` of the database codes nearest to each query by ``(L − q·d) / 2`` — the Hamming distance for
    ±1 codes, and the authors' distance for codes with 0 entries (a 0 bit is half a mismatch away from ±1) —
    ties broken by id, as :class:`HammingIndex` does."""
    queries, database = np.asarray(queries, np.float32), np.asarray(database, np.float32)
    if queries.shape[1] != database.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} bits, the database {database.shape[1]}")
    ranked = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk_size):
        distances = (queries.shape[1] - queries[start : start + chunk_size] @ database.T) / 2
        ranked[start : start + chunk_size] = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return ranked
