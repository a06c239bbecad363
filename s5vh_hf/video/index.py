"""A Hamming index of a video collection that knows what it belongs to, grows and shrinks, and is searched by
query videos.

``<index>/index.faissindex`` (faiss binary format), ``<index>/entries.parquet`` (row → ``video_id``, absolute
``path``, ``video_key``) and ``<index>/manifest.json`` recording the model (fingerprint, absolute folder or Hub id,
code length), the frame extractor (name, source, D), the frames per video, and the files that were skipped with
their reasons. A query video goes through the same extractor and model; an index built with another model or
extractor is refused, by the manifest. :meth:`VideoIndex.add_videos` decodes and encodes only the videos it does
not hold yet (a per-video cache keyed by path, size and modification time); :meth:`VideoIndex.remove` drops
entries without touching the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.commits import StagedFiles, reading, sha256_file
from ..model.fingerprint import model_fingerprint
from ..retrieval.hamming_index import HammingIndex

MANIFEST = "manifest.json"
INDEX_FILE = "index.faissindex"
ENTRIES_FILE = "entries.parquet"
THUMBNAILS = "thumbnails"  # <index>/thumbnails/<video_key>.jpg: a strip of each video's sampled frames
INDEX_FORMATS = ("s5vh-video-index-v1", "s5vh-video-index-v2")


@dataclass
class VideoHit:
    video_id: str
    path: str | None
    hamming: int


@dataclass
class VideoQuery:
    """One query video's answer: its ``hits``, or the one-line ``error`` that kept it from being answered."""

    query: str
    hits: list[VideoHit] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"query": self.query, "results": [hit.__dict__ for hit in self.hits]}
        if self.error is not None:
            answer["error"] = self.error
        return answer


@dataclass
class IndexChange:
    """What :meth:`VideoIndex.add_videos` or :meth:`VideoIndex.remove` did."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    frames_decoded: int = 0

    def summary(self) -> str:
        parts = [f"{len(getattr(self, name))} {name}" for name in ("added", "replaced", "removed", "unchanged")
                 if getattr(self, name)]  # fmt: skip
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (unreadable)")
        if self.unknown:
            parts.append(f"{len(self.unknown)} not in the index")
        return ", ".join(parts) or "nothing changed"


def model_source(model: Any) -> str | None:
    """Where the model was loaded from: an absolute folder, or a Hub repo id as given."""
    source = getattr(model, "loaded_from", None)
    if source and Path(source).exists():
        return os.path.abspath(source)
    return source


def _entries_table(video_ids: Sequence[str], paths: Sequence[str | None], keys: Sequence[str | None],
                   labels: Sequence[list[int] | None] | None = None):  # fmt: skip
    import pyarrow as pa

    labels = list(labels) if labels is not None else [None] * len(video_ids)
    return pa.table({"video_id": pa.array(list(video_ids), pa.string()), "path": pa.array(list(paths), pa.string()),
                     "video_key": pa.array(list(keys), pa.string()),
                     "labels": pa.array(labels, pa.list_(pa.int64()))})  # fmt: skip


def _commit_index(staged: StagedFiles, codes: np.ndarray, code_length: int, entries, manifest: dict[str, Any]) -> None:
    """Write the codes, entries and manifest into ``staged`` and commit them as one step."""
    import pyarrow.parquet as pq

    index = HammingIndex.from_codes(codes, code_length)
    index.save(staged.staging / INDEX_FILE)
    pq.write_table(entries, staged.staging / ENTRIES_FILE)
    manifest = {**manifest, "format": INDEX_FORMATS[-1], "count": int(len(codes))}
    manifest["files"] = {name: sha256_file(staged.staging / name) for name in (INDEX_FILE, ENTRIES_FILE)}
    (staged.staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    staged.commit([(name, name) for name in (INDEX_FILE, ENTRIES_FILE, MANIFEST)])


def build_video_index(
    model: Any,
    features: Any,
    out_dir: str | os.PathLike,
    extractor: dict[str, Any] | None,
    num_frames: int | None = None,
    batch_size: int = 256,
    skipped: dict[str, str] | None = None,
    split: str = "database",
) -> Path:
    """Encode a feature split (with ``video_id`` and, for extracted videos, ``path``) and save the index with its
    manifest. ``extractor`` is the frame encoder's identity (``FrameEncoder.identity``) the features came from;
    ``skipped`` the files the extraction could not read (absolute path → reason).

    The codes, the entries and the manifest are committed together (:class:`~s5vh_hf.model.commits.StagedFiles`,
    under the folder's write lock): a kill or a full disk leaves the old index whole. The manifest records the
    sha256 of the other two files, so a file swapped in from another build is refused on load."""
    from ..data.loading import videos_and_labels
    from .extraction import video_key

    out_dir = Path(out_dir)
    videos, _ = videos_and_labels(features, require_labels=False)
    codes = model.encode(videos, batch_size=batch_size, output="packed")
    paths = features["path"] if "path" in features.column_names else [None] * len(videos)
    paths = [os.path.abspath(p) if p else None for p in paths]
    keys = [video_key(p) if p else None for p in paths]
    labels = features["labels"] if "labels" in features.column_names else None
    manifest = {
        "model": {"fingerprint": model_fingerprint(model), "source": model_source(model),
                  "code_length": model.config.code_length},
        "extractor": extractor,
        "num_frames": num_frames,
        "split": split,
        "skipped": dict(skipped or {}),
    }  # fmt: skip
    with StagedFiles(out_dir, "index") as staged:
        _commit_index(staged, codes, model.config.code_length,
                      _entries_table(features["video_id"], paths, keys, labels), manifest)  # fmt: skip
    return out_dir


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest, or ``None``."""
    if not isinstance(manifest, dict):
        return "it is not a JSON object"
    if manifest.get("format") not in INDEX_FORMATS:
        return f"unknown format {manifest.get('format')!r}"
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("fingerprint"), str):
        return "it names no model fingerprint"
    if not isinstance(model.get("code_length"), int):
        return "it records no code length"
    if not isinstance(manifest.get("files"), dict):
        return "it records no file hashes (an index built by an older version)"
    if manifest.get("extractor") is not None and not isinstance(manifest.get("extractor"), dict):
        return "its extractor is not an object"
    return None


class VideoIndex:
    """A saved video index (:func:`build_video_index`), checked on load: the manifest is readable and complete,
    and the codes and entries files are the ones it was committed with."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if not (self.folder / MANIFEST).is_file():
            raise FileNotFoundError(f"{self.folder} is not a video index (no {MANIFEST}); build one with `s5vh index`")
        with reading(self.folder):
            self._load()

    def _load(self) -> None:
        import pyarrow.parquet as pq

        where = self.folder / MANIFEST
        try:
            manifest = json.loads(where.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{where} is not valid JSON ({str(error).splitlines()[0][:80]}); rebuild the index "
                             "with `s5vh index`") from error  # fmt: skip
        problem = _manifest_problem(manifest)
        if problem:
            raise ValueError(f"{where} is not a usable index manifest: {problem}; rebuild the index with `s5vh index`")
        self.manifest = manifest
        for name in (INDEX_FILE, ENTRIES_FILE):
            if not (self.folder / name).is_file():
                raise ValueError(f"{self.folder / name} is missing; rebuild the index with `s5vh index`")
            if sha256_file(self.folder / name) != manifest["files"].get(name):
                raise ValueError(f"{self.folder / name} is not the file this index was built with (its hash "
                                 "differs from the manifest's); rebuild the index with `s5vh index`")  # fmt: skip
        try:
            self.index = HammingIndex.load(self.folder / INDEX_FILE)
            entries = pq.read_table(self.folder / ENTRIES_FILE).to_pydict()
        except Exception as error:  # noqa: BLE001 - a damaged file of the right hash cannot happen; a bug can
            raise ValueError(f"{self.folder}: cannot read the index files ({type(error).__name__}); rebuild the "
                             "index with `s5vh index`") from error  # fmt: skip
        self.video_ids, self.paths = entries["video_id"], entries["path"]
        self.keys = entries.get("video_key") or [None] * len(self.video_ids)
        self.labels = entries.get("labels") or [None] * len(self.video_ids)
        if len(self.video_ids) != self.index.ntotal:
            raise ValueError(f"{self.folder}: {len(self.video_ids)} entries for {self.index.ntotal} codes")

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def code_length(self) -> int:
        return int(self.manifest["model"]["code_length"])

    def info(self) -> dict[str, Any]:
        """What the index holds: count, model, extractor, frames per video, code length, skipped files."""
        return {"folder": os.path.abspath(self.folder), "count": len(self), "code_length": self.code_length,
                "model": self.manifest["model"].get("source"), "extractor": self.manifest.get("extractor"),
                "num_frames": self.manifest.get("num_frames"), "skipped": self.manifest.get("skipped", {})}  # fmt: skip

    def entries(self) -> list[dict[str, Any]]:
        """One ``{"video_id", "path"}`` per indexed video, in index order."""
        return [{"video_id": v, "path": p} for v, p in zip(self.video_ids, self.paths)]

    def thumbnail(self, row: int) -> Path | None:
        """The strip of thumbnails of entry ``row`` (made at indexing time), or ``None``."""
        key = self.keys[row]
        path = self.folder / THUMBNAILS / f"{key}.jpg" if key else None
        return path if path is not None and path.is_file() else None

    def check_compatible(self, model: Any, extractor: dict[str, Any] | None) -> None:
        """Refuse a model or extractor other than the ones the index was built with."""
        recorded = self.manifest["model"]
        if recorded["fingerprint"] != model_fingerprint(model):
            raise ValueError(f"{self.folder} was built with another model ({recorded.get('source')}); query with that "
                             "model or rebuild the index")  # fmt: skip
        recorded_extractor = self.manifest.get("extractor")
        if extractor is not None and recorded_extractor is not None and _same_extractor(recorded_extractor, extractor):
            return
        if extractor is not None and recorded_extractor is not None:
            raise ValueError(f"{self.folder} was built with frame extractor {self.manifest['extractor']}, not "
                             f"{extractor}; query with the same extractor")  # fmt: skip

    def search_codes(self, packed: np.ndarray, k: int = 10) -> list[list[VideoHit]]:
        distances, ids = self.index.search(packed, min(k, self.index.ntotal))
        return [[VideoHit(self.video_ids[i], self.paths[i], int(d)) for d, i in zip(row_d, row_i)]
                for row_d, row_i in zip(distances, ids)]  # fmt: skip

    def _read_options(self, encoder: Any) -> dict[str, Any]:
        return {"num_frames": self.manifest.get("num_frames") or 25, "size": encoder.frame_side}

    def encode_query(self, path: str | os.PathLike, model: Any, encoder: Any) -> np.ndarray:
        """The packed code ``[L/8]`` of a query video, decoded and encoded as the collection was (same frames per
        video and frame size); raises :class:`~s5vh_hf.video.decoding.BadVideo` when it cannot be decoded."""
        from .decoding import read_frames

        frames = read_frames(path, **self._read_options(encoder)).frames
        return model.encode([encoder.encode(frames)], output="packed")[0]

    def search_videos(
        self, query_paths: list[str | os.PathLike], model: Any, encoder: Any, k: int = 10
    ) -> list[list[VideoHit]]:
        """Extract, encode and search each query video (same extractor settings as the index); a query that cannot
        be decoded raises :class:`~s5vh_hf.video.decoding.BadVideo` (:meth:`query_videos` reports it instead)."""
        from .decoding import BadVideo

        answers = self.query_videos(query_paths, model, encoder, k)
        for answer in answers:
            if answer.error is not None:
                raise BadVideo(answer.query, answer.error)
        return [answer.hits for answer in answers]

    def query_videos(self, query_paths: Sequence[str | os.PathLike], model: Any, encoder: Any,
                     k: int = 10) -> list[VideoQuery]:  # fmt: skip
        """Search with each query video; a query that cannot be decoded gets its reason in ``error`` and the others
        are answered."""
        from .decoding import BadVideo

        self.check_compatible(model, encoder.identity)
        answers = [VideoQuery(os.path.abspath(path)) for path in query_paths]
        for answer, path in zip(answers, query_paths):
            try:
                answer.hits = self.search_codes(self.encode_query(path, model, encoder)[None], k)[0]
            except BadVideo as bad:
                answer.error = bad.reason
            except Exception as error:  # noqa: BLE001 - one bad query never stops the others
                answer.error = f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
        return answers

    def add_videos(self, videos: Sequence[str | os.PathLike], model: Any, encoder: Any, decode_workers: int = 2,
                   show_progress_bar: bool | None = None) -> IndexChange:  # fmt: skip
        """Add video files (a changed file replaces its entry). Only videos the index does not hold as they are now
        are decoded and encoded; the other entries and their codes are kept as they are."""
        from .extraction import ExtractionReport, fill_feature_cache, read_feature_cache, video_key

        self.check_compatible(model, encoder.identity)
        change = IndexChange()
        paths = [Path(os.path.abspath(p)) for p in videos]
        keys = [video_key(p) for p in paths]
        held = set(self.keys)
        new = [(p, k) for p, k in zip(paths, keys) if k not in held]
        change.unchanged = [str(p) for p, k in zip(paths, keys) if k in held]
        if new:
            read = self._read_options(encoder)
            options = {"num_frames": read["num_frames"], "fps": None, "size": read["size"]}  # extraction_options
            work = self.folder / "features" / ".extract" / str(self.manifest.get("split") or "database")
            report = ExtractionReport("add")
            fill_feature_cache([p for p, _ in new], [k for _, k in new], work, encoder, options, report,
                               decode_workers=decode_workers, show_progress_bar=show_progress_bar,
                               thumbnails=self.folder / THUMBNAILS)  # fmt: skip
            change.frames_decoded = report.frames
            cached, skipped = read_feature_cache(work, encoder, options, [k for _, k in new])
            by_key = {p_k[1]: p_k[0] for p_k in new}
            change.skipped = {str(by_key[key]): reason for key, reason in skipped.items()}
            features = [np.asarray(f, np.float32) for f in cached.column("features").to_pylist()]
            added_keys = cached.column("video_key").to_pylist()
            codes = model.encode(features, output="packed") if features else None
        with StagedFiles(self.folder, "index") as staged:
            self._load()  # the index as it is now, under the write lock
            if not new or codes is None:
                return change
            added_paths = [str(by_key[key]) for key in added_keys]
            old_codes = self.index.codes()
            keep = [i for i, path in enumerate(self.paths) if path not in set(added_paths)]
            change.replaced = [self.paths[i] for i in range(len(self)) if i not in set(keep)]
            change.added = [p for p in added_paths if p not in set(change.replaced)]
            ids = [self.video_ids[i] for i in keep]
            for path in added_paths:
                ids.append(_video_id_for(path, self.paths, self.video_ids, taken=set(ids)))
            all_codes = np.concatenate([old_codes[keep], codes]) if keep else codes
            entries = _entries_table(ids, [self.paths[i] for i in keep] + added_paths,
                                     [self.keys[i] for i in keep] + added_keys,
                                     [self.labels[i] for i in keep] + [None] * len(added_paths))  # fmt: skip
            manifest = {**self.manifest, "skipped": {**{p: r for p, r in self.manifest.get("skipped", {}).items()
                                                        if p not in set(added_paths)}, **change.skipped}}  # fmt: skip
            _commit_index(staged, all_codes, self.code_length, entries, manifest)
            self._load()
        return change

    def remove(self, items: Sequence[str | os.PathLike]) -> IndexChange:
        """Drop the entries named by video id or by path; the others and their codes are kept as they are."""
        change = IndexChange()
        with StagedFiles(self.folder, "index") as staged:
            self._load()
            wanted = {str(item) for item in items} | {os.path.abspath(item) for item in items}
            drop = [i for i, (v, p) in enumerate(zip(self.video_ids, self.paths)) if v in wanted or p in wanted]
            known = {self.video_ids[i] for i in drop} | {self.paths[i] for i in drop}
            change.unknown = [str(item) for item in items if str(item) not in known
                              and os.path.abspath(item) not in known]  # fmt: skip
            if not drop:
                return change
            if len(drop) == len(self):
                raise ValueError(f"removing every video would leave {self.folder} empty; delete the folder instead")
            change.removed = [self.paths[i] or self.video_ids[i] for i in drop]
            keep = [i for i in range(len(self)) if i not in set(drop)]
            entries = _entries_table([self.video_ids[i] for i in keep], [self.paths[i] for i in keep],
                                     [self.keys[i] for i in keep], [self.labels[i] for i in keep])  # fmt: skip
            _commit_index(staged, self.index.codes()[keep], self.code_length, entries, self.manifest)
            self._load()
        return change


def _same_extractor(recorded: dict[str, Any], given: dict[str, Any]) -> bool:
    """The same frame extractor: equal identities, a local folder compared by its absolute path (indexes built
    before the identity recorded absolute folders name them relative to where they were built)."""

    def normal(identity: dict[str, Any]) -> dict[str, Any]:
        return {key: os.path.abspath(value) if key in ("name", "source") and isinstance(value, str)
                and Path(value).is_dir() else value for key, value in identity.items()}  # fmt: skip

    return normal(recorded) == normal(given)


def _video_id_for(path: str, paths: Sequence[str | None], video_ids: Sequence[str], taken: set[str]) -> str:
    """The id of an added video: its existing id when it replaces an entry, else its path relative to the folder
    the collection shares, else its file name; its absolute path when that id is taken."""
    if path in paths:
        return video_ids[list(paths).index(path)]
    candidate = Path(path).name
    folders = [os.path.dirname(p) for p in paths if p]
    if folders:
        common = os.path.commonpath(folders)
        if os.path.commonpath([common, path]) == common:
            candidate = Path(path).relative_to(common).as_posix()
    return path if candidate in taken else candidate
