"""A Hamming index of a video collection that knows what it belongs to, and search by a query video.

``<index>/index.faissindex`` (faiss binary format), ``<index>/entries.parquet`` (row → ``video_id``, ``path``) and
``<index>/manifest.json`` recording the model (fingerprint, where it was loaded from, code length) and the frame
extractor (name, source, D, frames per video). A query video goes through the same extractor and model; an index
built with another model or extractor is refused, by the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.commits import StagedFiles, reading, sha256_file
from ..model.fingerprint import model_fingerprint
from ..retrieval.hamming_index import HammingIndex

MANIFEST = "manifest.json"
INDEX_FILE = "index.faissindex"
ENTRIES_FILE = "entries.parquet"


@dataclass
class VideoHit:
    video_id: str
    path: str | None
    hamming: int


def build_video_index(
    model: Any,
    features: Any,
    out_dir: str | os.PathLike,
    extractor: dict[str, Any] | None,
    num_frames: int | None = None,
    batch_size: int = 256,
) -> Path:
    """Encode a feature split (with ``video_id`` and, for extracted videos, ``path``) and save the index with its
    manifest. ``extractor`` is the frame encoder's identity (``FrameEncoder.identity``) the features came from.

    The codes, the entries and the manifest are committed together (:class:`~s5vh_hf.model.commits.StagedFiles`, under
    the folder's write lock): a kill or a full disk leaves the old index whole. The manifest records the sha256 of
    the other two files, so a file swapped in from another build is refused on load."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..data.loading import videos_and_labels

    out_dir = Path(out_dir)
    videos, _ = videos_and_labels(features, require_labels=False)
    codes = model.encode(videos, batch_size=batch_size, output="packed")
    index = HammingIndex.from_codes(codes, model.config.code_length)
    paths = features["path"] if "path" in features.column_names else [None] * len(videos)
    with StagedFiles(out_dir, "index") as staged:
        index.save(staged.staging / INDEX_FILE)
        pq.write_table(pa.table({"video_id": features["video_id"], "path": paths}), staged.staging / ENTRIES_FILE)
        manifest = {
            "format": "s5vh-video-index-v1",
            "model": {"fingerprint": model_fingerprint(model), "source": model.loaded_from,
                      "code_length": model.config.code_length},
            "extractor": extractor,
            "num_frames": num_frames,
            "count": len(codes),
            "files": {name: sha256_file(staged.staging / name) for name in (INDEX_FILE, ENTRIES_FILE)},
        }  # fmt: skip
        (staged.staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        staged.commit([(name, name) for name in (INDEX_FILE, ENTRIES_FILE, MANIFEST)])
    return out_dir


class VideoIndex:
    """A saved video index (:func:`build_video_index`), checked on load: the manifest is readable and the codes
    and entries files are the ones it was committed with."""

    def __init__(self, folder: str | os.PathLike) -> None:
        import pyarrow.parquet as pq

        self.folder = Path(folder)
        if not (self.folder / MANIFEST).is_file():
            raise FileNotFoundError(f"{self.folder} is not a video index (no {MANIFEST}); build one with `s5vh index`")
        with reading(self.folder):
            try:
                self.manifest = json.loads((self.folder / MANIFEST).read_text())
                self.manifest["model"]["fingerprint"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{self.folder / MANIFEST} is not a readable index manifest ({type(error).__name__}: "
                                 f"{error}); rebuild the index with `s5vh index`") from error  # fmt: skip
            recorded = self.manifest.get("files")
            if not isinstance(recorded, dict):
                raise ValueError(f"{self.folder / MANIFEST} records no file hashes (an index built by an older "
                                 "version); rebuild the index with `s5vh index`")  # fmt: skip
            for name in (INDEX_FILE, ENTRIES_FILE):
                if not (self.folder / name).is_file() or sha256_file(self.folder / name) != recorded.get(name):
                    raise ValueError(f"{self.folder / name} is missing or not the file this index was built with; "
                                     "rebuild the index with `s5vh index`")  # fmt: skip
            self.index = HammingIndex.load(self.folder / INDEX_FILE)
            entries = pq.read_table(self.folder / ENTRIES_FILE).to_pydict()
        self.video_ids, self.paths = entries["video_id"], entries["path"]
        if len(self.video_ids) != self.index.ntotal:
            raise ValueError(f"{self.folder}: {len(self.video_ids)} entries for {self.index.ntotal} codes")

    def check_compatible(self, model: Any, extractor: dict[str, Any] | None) -> None:
        """Refuse a model or extractor other than the ones the index was built with."""
        recorded = self.manifest["model"]
        if recorded["fingerprint"] != model_fingerprint(model):
            raise ValueError(f"{self.folder} was built with another model ({recorded.get('source')}); query with that "
                             "model or rebuild the index")  # fmt: skip
        if extractor is not None and self.manifest.get("extractor") not in (None, extractor):
            raise ValueError(f"{self.folder} was built with frame extractor {self.manifest['extractor']}, not "
                             f"{extractor}; query with the same extractor")  # fmt: skip

    def search_codes(self, packed: np.ndarray, k: int = 10) -> list[list[VideoHit]]:
        distances, ids = self.index.search(packed, min(k, self.index.ntotal))
        return [[VideoHit(self.video_ids[i], self.paths[i], int(d)) for d, i in zip(row_d, row_i)]
                for row_d, row_i in zip(distances, ids)]  # fmt: skip

    def search_videos(
        self, query_paths: list[str | os.PathLike], model: Any, encoder: Any, k: int = 10
    ) -> list[list[VideoHit]]:
        """Extract, encode and search each query video (same extractor settings as the index)."""
        from .decoding import read_frames

        self.check_compatible(model, encoder.identity)
        frames = self.manifest.get("num_frames") or 25
        features = [encoder.encode(read_frames(path, num_frames=frames).frames) for path in query_paths]
        return self.search_codes(model.encode(features, output="packed"), k)
