"""CIFAR-100 / CIFAR-10 from their official python archives, split and fed through tf.data.

The archive is read straight from the ``.tar.gz`` (no extraction), decoded once per process
and cached. A validation split is carved from the training set (stratified, seeded) so that
model selection never sees the test set.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hks.errors import DatasetError

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    archive: str
    url: str
    md5: str
    folder: str
    train_members: tuple[str, ...]
    test_member: str
    fine_key: str
    coarse_key: str | None
    num_fine: int
    num_coarse: int | None


DATASETS = {
    "cifar100": DatasetSpec(
        name="cifar100", archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85", folder="cifar-100-python",
        train_members=("train",), test_member="test",
        fine_key="fine_labels", coarse_key="coarse_labels", num_fine=100, num_coarse=20),
    "cifar10": DatasetSpec(
        name="cifar10", archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a", folder="cifar-10-batches-py",
        train_members=tuple(f"data_batch_{i}" for i in range(1, 6)), test_member="test_batch",
        fine_key="labels", coarse_key=None, num_fine=10, num_coarse=None),
}


@dataclass(frozen=True)
class Split:
    """Images as uint8 NHWC, integer labels; ``coarse`` is None for single-head datasets."""

    x: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray | None

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Split:
        return Split(self.x[index], self.fine[index], None if self.coarse is None else self.coarse[index])


@dataclass(frozen=True)
class Cifar:
    spec: DatasetSpec
    train: Split
    test: Split


def spec_for(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}") from None


# --- finding and downloading the archive ------------------------------------------------------

def archive_path(dataset: str, data_dir: str | os.PathLike, download: bool = True) -> Path:
    """Path of the dataset archive in ``data_dir``, downloading it first when allowed."""
    spec = spec_for(dataset)
    path = Path(data_dir) / spec.archive
    if path.is_file():
        return path
    if not download:
        raise DatasetError(f"{path} not found: put {spec.archive} there (from {spec.url}) "
                           "or allow downloading (--download)")
    download_archive(spec.url, path, spec.md5)
    return path


def download_archive(url: str, dest: Path, md5: str | None) -> None:
    """Download to a temporary file beside ``dest``, check the md5, then rename atomically."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if md5 and digest.hexdigest() != md5:
            raise DatasetError(f"download of {url} is corrupt (md5 {digest.hexdigest()} != {md5}); "
                               "run again, or put the file in place by hand")
        os.replace(tmp_name, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetError(f"{dest} not found and downloading {url} failed ({exc}); "
                           f"put {dest.name} in {dest.parent} by hand") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


# --- reading the archive ------------------------------------------------------------------------

def _unpickle_member(tar: tarfile.TarFile, member: str) -> dict:
    try:
        handle = tar.extractfile(member)
    except KeyError:
        raise DatasetError(f"{tar.name} has no member {member!r}: not an official CIFAR archive") from None
    batch = pickle.load(handle, encoding="bytes")
    # Python 2 pickles give bytes keys; re-pickled copies may give str keys. Accept both.
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _split_from_batches(batches: list[dict], spec: DatasetSpec) -> Split:
    data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    fine = np.concatenate([np.asarray(b[spec.fine_key], dtype=np.int32) for b in batches])
    coarse = None
    if spec.coarse_key:
        coarse = np.concatenate([np.asarray(b[spec.coarse_key], dtype=np.int32) for b in batches])
    return Split(np.ascontiguousarray(x), fine, coarse)


@functools.lru_cache(maxsize=4)
def _read_archive(path: str, dataset: str) -> Cifar:
    spec = spec_for(dataset)
    try:
        with tarfile.open(path, "r:gz") as tar:
            train = [_unpickle_member(tar, f"{spec.folder}/{m}") for m in spec.train_members]
            test = [_unpickle_member(tar, f"{spec.folder}/{spec.test_member}")]
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise DatasetError(f"{path} is not a readable {spec.archive} ({exc}); "
                           f"delete it and download it again from {spec.url}") from None
    return Cifar(spec, _split_from_batches(train, spec), _split_from_batches(test, spec))


def load_cifar(dataset: str, data_dir: str | os.PathLike, download: bool = True) -> Cifar:
    """The whole dataset (train and test) as numpy arrays; cached per process."""
    path = archive_path(dataset, data_dir, download)
    return _read_archive(str(path.resolve()), dataset)


# --- splitting --------------------------------------------------------------------------------

def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): about ``fraction`` of each class goes to validation.

    Classes with a single example stay in training, so a tiny dataset still trains on every class.
    """
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = int(round(len(members) * fraction))
        if len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        val.append(members[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx


def subsample(split: Split, size: int, seed: int) -> Split:
    """The first ``size`` images of a seeded shuffle (the classic DATASET_SIZE habit); 0 keeps all."""
    if size <= 0 or size >= len(split):
        return split
    index = np.random.default_rng(seed).permutation(len(split))[:size]
    return split.take(np.sort(index))


@dataclass(frozen=True)
class Splits:
    spec: DatasetSpec
    train: Split
    val: Split
    test: Split


def load_splits(dataset: str, data_dir: str | os.PathLike, *, download: bool = True,
                val_fraction: float = 0.1, dataset_size: int = 0, seed: int = 42) -> Splits:
    """Train / validation / test for a search. The size limit applies before the split."""
    cifar = load_cifar(dataset, data_dir, download)
    pool = subsample(cifar.train, dataset_size, seed)
    train_idx, val_idx = stratified_split(pool.fine, val_fraction, seed)
    return Splits(cifar.spec, pool.take(train_idx), pool.take(val_idx), cifar.test)


# --- tf.data pipelines ------------------------------------------------------------------------

def _targets(split: Split) -> dict[str, np.ndarray]:
    targets = {"fine": split.fine}
    if split.coarse is not None:
        targets["coarse"] = split.coarse
    return targets


def point_augmentation(point: dict, augment_crop: bool) -> dict[str, Any]:
    """The training-batch augmentation a space point asks for (``random_crop``, ``cutout``) or the settings do."""
    return {"augment_crop": bool(augment_crop or point.get("random_crop")), "cutout": int(point.get("cutout") or 0)}


def make_dataset(split: Split, batch_size: int, *, training: bool, augment_crop: bool = False,
                 cutout: int = 0, seed: int | None = None, threads: int = 0) -> tf.data.Dataset:
    """A batched ``tf.data.Dataset`` of (uint8 images, {head: labels}).

    Batches stay uint8 (a quarter of float32's bytes to copy to a GPU); the model casts them. The
    arrays are in memory already, so nothing is cached twice. Augmentation (random flips, optional
    crops and ``cutout``-pixel squares) happens on training batches only; validation and test
    batches are served as they are. ``threads`` > 0 caps tf.data's own thread pool too, so that a
    worker given N threads really uses about N cores.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.x, _targets(split)))
    if training:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        if augment_crop:
            ds = ds.map(lambda x, y: (_random_crop(x, seed), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    if training:
        ds = ds.map(lambda x, y: (tf.image.random_flip_left_right(x, seed=seed), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
        if cutout > 0:
            ds = ds.map(lambda x, y: (_cutout(x, cutout, seed), y), num_parallel_calls=tf.data.AUTOTUNE)
    if threads > 0:
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
        ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)


KERAS_ITERATORS_PER_EPOCH = 2  # Keras 3's fit over a dataset of known length: one to train on, one made at
# the epoch's end and dropped


def skip_epochs(dataset: Any, epochs: int) -> Any:
    """``dataset`` (a training pipeline) wound on past its first ``epochs`` epochs, reading nothing.

    Each iterator made of a training pipeline draws the next shuffle, and Keras makes
    :data:`KERAS_ITERATORS_PER_EPOCH` per epoch; so a trial resumed after ``epochs`` epochs makes and drops
    as many first, and its next epochs are shuffled and augmented exactly as an uninterrupted run's
    (``tests/test_checkpoint.py`` checks it against the pinned Keras), not as its first epochs were."""
    for _ in range(KERAS_ITERATORS_PER_EPOCH * epochs):
        iter(dataset)
    return dataset


def _cutout(images: tf.Tensor, size: int, seed: int | None) -> tf.Tensor:
    """Zero one ``size`` x ``size`` square per image at a random centre (it may overlap the border)."""
    import tensorflow as tf

    shape = tf.shape(images)
    starts = tf.random.uniform((shape[0], 2, 1), 0, 32, dtype=tf.int32, seed=seed) - size // 2
    grid = tf.range(32)[None, :]
    inside_y = (grid >= starts[:, 0]) & (grid < starts[:, 0] + size)  # (batch, 32)
    inside_x = (grid >= starts[:, 1]) & (grid < starts[:, 1] + size)
    keep = tf.logical_not(inside_y[:, :, None] & inside_x[:, None, :])
    return images * tf.cast(keep, images.dtype)[..., None]


def _random_crop(image: tf.Tensor, seed: int | None) -> tf.Tensor:
    import tensorflow as tf

    padded = tf.image.pad_to_bounding_box(image, 4, 4, 40, 40)
    return tf.image.random_crop(padded, (32, 32, 3), seed=seed)


def class_names(dataset: str, data_dir: str | os.PathLike, download: bool = True) -> list[str]:
    """The fine class names from the archive's meta file (``label_names`` or ``fine_label_names``)."""
    spec = spec_for(dataset)
    meta, key = ("batches.meta", "label_names") if spec.coarse_key is None else ("meta", "fine_label_names")
    path = archive_path(dataset, data_dir, download)
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = _unpickle_member(tar, f"{spec.folder}/{meta}")[key]
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError):
        return [str(i) for i in range(spec.num_fine)]  # names are a nicety: numbers will do
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
