"""Indexing a collection, as ``s5vh index`` does it: from a feature dataset (with the extractor its extraction report
names) or from a folder of videos (extracted first, into the index folder)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..data.loading import load_feature_dataset
from ..video.index import THUMBNAILS, build_video_index

logger = logging.getLogger(__name__)


def is_feature_dataset_folder(source: str | os.PathLike) -> bool:
    """Whether ``source`` is a feature dataset folder (a card and ``data/``), not a folder of videos."""
    source = Path(source)
    return source.is_dir() and (source / "README.md").is_file() and (source / "data").is_dir()


def index_collection(
    model: Any,
    source: str | os.PathLike,
    out: str | os.PathLike,
    extractor: str | None = None,
    split: str = "database",
    num_frames: int = 25,
    decode_workers: int = 2,
    device: str | None = None,
) -> Path:
    """Build the video index of ``source`` into ``out`` and return it. A feature dataset is indexed as it is (its
    extraction report, when there is one, names the extractor and the frames per video); a folder of videos is
    first extracted with ``extractor`` (whose D must be the model's, on ``device``) into ``out/features``; the files it
    cannot read are recorded in the index's manifest."""
    identity, skipped = None, {}
    if is_feature_dataset_folder(source):
        features = load_feature_dataset(source, split=split)
        report = Path(source) / f"extraction_report_{split}.json"
        if report.is_file():
            recorded = json.loads(report.read_text())
            identity = recorded.get("encoder")
            skipped = recorded.get("skipped", {})
            num_frames = recorded.get("options", {}).get("num_frames") or num_frames
    else:
        from ..video.extraction import extract_video_features
        from ..video.frame_encoders import load_frame_encoder

        if not extractor:
            raise ValueError("indexing video files needs --extractor (e.g. vgg16 for the FCVID/UCF101 presets)")
        encoder = load_frame_encoder(extractor, device=device)
        if encoder.feature_dim != model.config.feature_dim:
            raise ValueError(f"extractor {extractor} gives D = {encoder.feature_dim}, the model reads "
                             f"D = {model.config.feature_dim}")  # fmt: skip
        report = extract_video_features(source, Path(out) / "features", encoder, split=split, num_frames=num_frames,
                                        decode_workers=decode_workers, thumbnails=Path(out) / THUMBNAILS)  # fmt: skip
        logger.info(report.summary())
        skipped = report.skipped
        features = load_feature_dataset(Path(out) / "features", split=split)
        identity = encoder.identity
    folder = build_video_index(model, features, out, identity, num_frames=num_frames, skipped=skipped, split=split)
    logger.info("indexed %d videos in %s", len(features), folder)
    return folder
