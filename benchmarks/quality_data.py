"""Data sets of the learning-quality benchmark: where frame order matters, real sequences, published shapes.

Each loader returns a :class:`QualitySet` with ``train`` (what S5VH and the baselines are fitted on),
``database`` and ``query`` splits. Nothing is downloaded: the synthetic sets are generated, the real ones ship
inside installed packages (scikit-learn's digits; the UCR series in aeon's wheel, read as text without importing
aeon). JapaneseVowels and BasicMotions are deliberately not used: they are kept for independent checks.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s5vh_hf.data.synthetic import make_order_dependent_videos

Split = tuple[list[np.ndarray], list[int]]


@dataclass
class QualitySet:
    """One benchmark set: splits of ``[T, D]`` float32 videos with class ids, and its training budget."""

    name: str
    description: str
    train: Split
    database: Split
    query: Split
    code_length: int
    num_clusters: int
    epochs: int
    ks: tuple[int, ...]

    @property
    def feature_dim(self) -> int:
        return self.train[0][0].shape[1]


def _split(videos: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> Split:
    return [np.ascontiguousarray(videos[i], dtype=np.float32) for i in indices], [int(labels[i]) for i in indices]


def _order_dependent_set(
    name: str, description: str, seed: int, sizes: tuple[int, int, int], num_frames: int, feature_dim: int,
    epochs: int,
) -> QualitySet:  # fmt: skip
    """32 classes (16 scene sequences and their reverses) from :func:`make_order_dependent_videos`; train,
    database and query (``sizes``) are disjoint videos. 64 bits, K = 32."""
    data = make_order_dependent_videos(
        num_videos=sum(sizes), num_base_classes=16, num_frames=num_frames, feature_dim=feature_dim, seed=seed
    )
    bounds = np.cumsum((0,) + sizes)
    train, database, query = (_split(data.features, data.labels, np.arange(bounds[i], bounds[i + 1])) for i in range(3))
    return QualitySet(name, description, train, database, query, code_length=64, num_clusters=32, epochs=epochs,
                      ks=(5, 20, 40))  # fmt: skip


def order_set(seed: int = 0) -> QualitySet:
    """The hard order-dependent set: 25 × 256 non-negative frames, 1,280 / 960 / 320 videos, 20 epochs."""
    description = "order-dependent synthetic, 32 classes (half reversed), 25×256"
    return _order_dependent_set("order", description, 1000 + seed, (1280, 960, 320), 25, 256, epochs=20)


def published_shape_set(seed: int, num_frames: int, feature_dim: int) -> QualitySet:
    """The order-dependent generator at a published feature shape (25 × 4096 VGG, 30 × 2048 ResNet-50), small N
    (640 / 480 / 160 videos, 10 epochs): speed and stability at the real dimensions."""
    description = f"order-dependent synthetic at the published shape {num_frames}×{feature_dim}, 32 classes"
    name = f"shape-{num_frames}x{feature_dim}"
    return _order_dependent_set(name, description, 2000 + seed, (640, 480, 160), num_frames, feature_dim, epochs=10)


def digits_set(seed: int = 0) -> QualitySet:
    """scikit-learn's handwritten digits (real, 1,797 images) read as 8 row-frames of 8 pixels; a stratified
    1,000-image training split is the database (the UCF101/HMDB51 protocol), the other 797 are the queries."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    videos, labels = digits.images.astype(np.float32), digits.target
    train, test = train_test_split(np.arange(len(labels)), train_size=1000, stratify=labels, random_state=seed)
    train_split = _split(videos, labels, train)
    return QualitySet(
        name="digits",
        description="scikit-learn digits, 8 row-frames × 8 pixels, 10 classes, database = training split",
        train=train_split,
        database=train_split,
        query=_split(videos, labels, test),
        code_length=32,
        num_clusters=10,
        epochs=40,
        ks=(5, 20, 100),
    )


def aeon_data_folder() -> Path | None:
    """The folder of data sets shipped in aeon's wheel, found without importing aeon (None if not installed)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return folder if folder.is_dir() else None


def read_ts_file(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """Series ``[channels, length]`` and class names of a ``.ts`` file (the UCR/UEA text format)."""
    series, classes = [], []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        *channels, label = line.split(":")
        series.append(np.array([[float(v) for v in channel.split(",")] for channel in channels], dtype=np.float32))
        classes.append(label)
    return series, classes


def ucr_frames_set(name: str, num_frames: int, code_length: int, epochs: int, ks: tuple[int, ...]) -> QualitySet:
    """A univariate UCR series cut into ``num_frames`` consecutive windows (frames of ``length // num_frames``
    values); its TRAIN file is the training split and the database, TEST the queries."""
    folder = aeon_data_folder()
    if folder is None:
        raise FileNotFoundError(f"the {name} set ships in aeon's wheel: pip install --no-deps aeon")
    train_series, train_classes = read_ts_file(folder / name / f"{name}_TRAIN.ts")
    test_series, test_classes = read_ts_file(folder / name / f"{name}_TEST.ts")
    class_ids = {c: i for i, c in enumerate(sorted(set(train_classes) | set(test_classes)))}

    def to_split(series: list[np.ndarray], classes: list[str]) -> Split:
        videos = []
        for values in series:
            window = values.shape[1] // num_frames
            videos.append(values[0, : window * num_frames].reshape(num_frames, window))
        return videos, [class_ids[c] for c in classes]

    train = to_split(train_series, train_classes)
    frame_width = train[0][0].shape[1]
    return QualitySet(
        name=name.lower(),
        description=f"UCR {name} (real), {num_frames} windows × {frame_width} values, {len(class_ids)} classes, "
        "database = TRAIN split, queries = TEST split",
        train=train,
        database=train,
        query=to_split(test_series, test_classes),
        code_length=code_length,
        num_clusters=len(class_ids),
        epochs=epochs,
        ks=ks,
    )


QUALITY_SETS: dict[str, Callable[[int], QualitySet]] = {
    "order": order_set,
    "digits": digits_set,
    "osuleaf": lambda seed: ucr_frames_set("OSULeaf", 25, code_length=32, epochs=40, ks=(5, 20)),
    "acsf1": lambda seed: ucr_frames_set("ACSF1", 20, code_length=32, epochs=40, ks=(5, 10)),
    "shape-25x4096": lambda seed: published_shape_set(seed, 25, 4096),
    "shape-30x2048": lambda seed: published_shape_set(seed, 30, 2048),
}
"""Every set of the benchmark by name; each loader takes the seed (the synthetic sets draw new data per seed)."""
