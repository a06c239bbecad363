"""What the search page searches, without any UI: a video index folder (query videos are decoded and encoded like
the collection; results carry thumbnails and the video file) or a model with a feature split (ids, labels and
distances only). Every method answers with an :class:`Answer` whose ``message`` says what went wrong, so that the
page shows it instead of a stack trace; nothing here takes a path from the page except an uploaded file's.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 500 * 1024**2


@dataclass
class ResultCard:
    """One hit: its rank, id, Hamming distance, and what there is to show of it."""

    rank: int
    row: int
    video_id: str
    hamming: int
    path: str | None = None
    thumbnail: str | None = None
    labels: list[int] | None = None
    hit: bool | None = None  # shares a label with the query (when both have labels)

    @property
    def caption(self) -> str:
        mark = "" if self.hit is None else (" ✓" if self.hit else " ✗")
        return f"{self.rank}. {self.video_id} · Hamming {self.hamming}{mark}"


@dataclass
class Answer:
    """A query's answer: the cards, a one-line ``message`` (an error, or what was searched), precision@k when the
    query and the hits have labels."""

    cards: list[ResultCard] = field(default_factory=list)
    message: str = ""
    precision: float | None = None
    error: bool = False


class SearchCollection:
    """A searchable collection: build it with :meth:`from_index` or :meth:`from_features`."""

    def __init__(self, codes: np.ndarray, code_length: int, video_ids: list[str], labels: list, info: dict[str, Any],
                 paths: list | None = None, index: Any = None, model: Any = None, encoder: Any = None) -> None:  # fmt: skip
        from ..retrieval.hamming_index import HammingIndex

        self.codes, self.code_length, self.video_ids, self.labels = codes, code_length, video_ids, labels
        self.paths = paths or [None] * len(video_ids)
        self.video_index, self.model, self.encoder, self.details = index, model, encoder, info
        self.hamming = HammingIndex.from_codes(codes, code_length)
        self.row_of = {video_id: row for row, video_id in enumerate(video_ids)}
        self._player_dir: Path | None = None  # made on the first result played, removed when the process ends

    # ------------------------------------------------------------------------------------------------ building

    @classmethod
    def from_index(cls, folder: str | os.PathLike, model: Any = None, encoder: Any = None,
                   device: str | None = None) -> SearchCollection:  # fmt: skip
        """A video index folder; its model and frame extractor are loaded from what the manifest names unless given
        (and refused when they are not the ones it was built with)."""
        from ..model.modeling_s5vh import S5VHModel
        from ..video.frame_encoders import load_frame_encoder
        from ..video.index import VideoIndex

        index = VideoIndex(folder)
        if model is None:
            source = index.manifest["model"].get("source")
            if not source:
                raise ValueError(f"{folder} records no model; pass one")
            model = S5VHModel.from_pretrained(source)
        extractor = (index.manifest.get("extractor") or {}).get("source")
        if encoder is None and extractor:
            encoder = load_frame_encoder(extractor, device=device)
        if device:
            model = model.to(device)
        index.check_compatible(model, encoder.identity if encoder is not None else None)
        info = index.info()
        info["kind"] = "video index"
        return cls(index.index.codes(), index.code_length, list(index.video_ids), list(index.labels), info,
                   paths=list(index.paths), index=index, model=model, encoder=encoder)  # fmt: skip

    @classmethod
    def from_features(cls, model: Any, dataset: str | os.PathLike, split: str = "database") -> SearchCollection:
        """A model (folder, Hub id or loaded) and a feature dataset (folder or Hub id): codes, ids and labels."""
        from ..data.loading import load_feature_dataset, videos_and_labels
        from ..model.modeling_s5vh import S5VHModel

        if not hasattr(model, "encode"):
            model = S5VHModel.from_pretrained(model)
        features = load_feature_dataset(dataset, split=split)
        videos, _ = videos_and_labels(features, require_labels=False)
        codes = model.encode(videos, output="packed")
        labels = features["labels"] if "labels" in features.column_names else [None] * len(features)
        info = {"kind": "feature collection", "folder": str(dataset), "split": split, "count": len(features),
                "code_length": model.config.code_length, "model": getattr(model, "loaded_from", None),
                "extractor": None, "num_frames": None, "skipped": {}}  # fmt: skip
        return cls(codes, model.config.code_length, list(features["video_id"]), list(labels), info, model=model)

    # --------------------------------------------------------------------------------------------------- facts

    @property
    def has_videos(self) -> bool:
        """Whether query videos can be searched (a video index with its frame extractor)."""
        return self.video_index is not None and self.encoder is not None

    def __len__(self) -> int:
        return len(self.video_ids)

    def summary(self) -> str:
        """A line or two of Markdown: model, code length, extractor, size."""
        info = self.details
        extractor = info.get("extractor") or {}
        lines = [f"**{info['count']:,} videos** · {info['code_length']}-bit codes · model `{info.get('model')}`"]
        if extractor:
            lines.append(f"frame extractor `{extractor.get('name')}` (D = {extractor.get('feature_dim')}), "
                         f"{info.get('num_frames')} frames per video")  # fmt: skip
        else:
            lines.append(f"feature collection `{info.get('folder')}` (split {info.get('split')}): ids, labels and "
                         "distances")  # fmt: skip
        if info.get("skipped"):
            lines.append(f"{len(info['skipped'])} files could not be indexed")
        return "  \n".join(lines)

    # -------------------------------------------------------------------------------------------------- search

    def search_upload(self, path: str | None, k: int = 10, radius: int | None = None) -> Answer:
        """Search with an uploaded (or recorded) video file."""
        from ..video.decoding import BadVideo

        if not path:
            return Answer(message="Upload a video clip first.", error=True)
        if not self.has_videos:
            return Answer(message="This collection holds features only: pick one of its videos instead.", error=True)
        try:
            size = os.path.getsize(path)
        except OSError:
            return Answer(message="The upload did not arrive; try again.", error=True)
        if size > MAX_UPLOAD_BYTES:
            return Answer(message=f"The file is {size / 1024**2:.0f} MB; the limit is "
                          f"{MAX_UPLOAD_BYTES / 1024**2:.0f} MB.", error=True)  # fmt: skip
        name = Path(path).name
        try:
            code = self.video_index.encode_query(path, self.model, self.encoder)
        except BadVideo as bad:
            return Answer(message=f"Cannot use {name}: {bad.reason}.", error=True)
        except Exception as error:  # noqa: BLE001 - the page shows a message, the server keeps serving
            logger.exception("query %s failed", name)
            return Answer(message=f"Cannot use {name}: {type(error).__name__}.", error=True)
        return self._answer(code, k, radius, query_labels=None, exclude=None, what=f"the uploaded clip {name}")

    def search_member(self, video_id: str | None, k: int = 10, radius: int | None = None) -> Answer:
        """Search with a video of the collection (its stored code: nothing is decoded), leaving it out."""
        if not video_id:
            return Answer(message="Pick a video of the collection first.", error=True)
        row = self.row_of.get(str(video_id))
        if row is None:
            return Answer(message=f"No video {str(video_id)[:80]!r} in this collection.", error=True)
        return self._answer(self.codes[row], k, radius, query_labels=self.labels[row], exclude=row,
                            what=f"collection video {video_id}")  # fmt: skip

    def _answer(self, code: np.ndarray, k: int, radius: int | None, query_labels, exclude: int | None,
                what: str) -> Answer:  # fmt: skip
        k = max(1, min(int(k), len(self) - (exclude is not None)))
        distances, rows = self.hamming.search(code[None], min(len(self), k + (exclude is not None)))
        cards: list[ResultCard] = []
        for distance, row in zip(distances[0], rows[0]):
            if row == exclude or row < 0 or (radius is not None and distance > radius) or len(cards) == k:
                continue
            labels = self.labels[row]
            hit = None if not query_labels or not labels else bool(set(query_labels) & set(labels))
            cards.append(ResultCard(len(cards) + 1, int(row), self.video_ids[row], int(distance), self.paths[row],
                                    self._thumbnail(int(row)), labels, hit))  # fmt: skip
        judged = [card.hit for card in cards if card.hit is not None]
        precision = float(np.mean(judged)) if judged and len(judged) == len(cards) else None
        message = f"{len(cards)} results for {what}"
        if radius is not None:
            message += f" within Hamming {radius}"
        if precision is not None:
            message += f" · precision@{len(cards)} = {precision:.2f}"
        return Answer(cards, message, precision)

    def _thumbnail(self, row: int) -> str | None:
        """The strip made at indexing time; for a video indexed without one, made now (once) beside the index."""
        if self.video_index is None or not self.paths[row]:
            return None
        strip = self.video_index.thumbnail(row)
        if strip is not None:
            return str(strip)
        from ..video.index import THUMBNAILS
        from ..video.thumbnails import make_thumbnail_strip

        key = self.video_index.keys[row] or f"row-{row}"
        target = self.video_index.folder / THUMBNAILS / f"{key}.jpg"
        try:
            return str(make_thumbnail_strip(self.paths[row], target))
        except Exception:  # noqa: BLE001 - a card without pictures is still a card
            logger.warning("no thumbnails for %s", self.paths[row])
            return None

    def playable_copy(self, row: int) -> str | None:
        """A private copy of the video of ``row`` for the page's player (the page never sees collection paths):
        the file itself when browsers play it, else an H.264 re-encode."""
        from ..video.playable import browser_playable_copy

        if not 0 <= row < len(self) or not self.paths[row] or not Path(self.paths[row]).is_file():
            return None
        if self._player_dir is None:
            self._player_dir = Path(tempfile.mkdtemp(prefix="s5vh-app-player-"))
            atexit.register(shutil.rmtree, self._player_dir, True)
        return str(browser_playable_copy(self.paths[row], self._player_dir / str(row)))

    @property
    def thumbnail_folder(self) -> Path | None:
        from ..video.index import THUMBNAILS

        return self.video_index.folder / THUMBNAILS if self.video_index is not None else None
