"""MNIST and Fashion-MNIST as flat tensors, online streams, and the random stream of Table 1.

Nothing is read at import time. Data is found in this order:

1. the ``root`` argument (or ``DataConfig.root``);
2. the environment variable ``$VSML_DATA`` (CI points it at ``../shared/data``);
3. ``~/.cache/vsml_lite/data``.

The folder uses torchvision's layout (``<root>/MNIST/raw/...``, ``<root>/FashionMNIST/raw/...``).
When a dataset is not there, torchvision downloads it (where there is internet); when that is
impossible a :class:`DatasetNotFoundError` names the folder searched and ``$VSML_DATA``. Every
file is checked before use (:func:`check_dataset`: idx header, size, label range, SHA-256
against the published file); a damaged one raises :class:`DatasetCorruptError` naming it.

Example:
    >>> import vsml_lite as vl
    >>> train = vl.load_dataset("mnist", train=True)          # images [60000, 784], labels [60000]
    >>> for x, y in vl.OnlineStream(train, seed=0, steps=3):  # one example per step
    ...     print(x.shape, int(y))
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

import torch

from .config import RANDOM_DATA_STD
from .validate import file_sha256

#: Environment variable naming the data folder.
DATA_ENV_VAR = "VSML_DATA"
#: Folder used when neither an argument nor ``$VSML_DATA`` gives one.
DEFAULT_DATA_ROOT = Path("~/.cache/vsml_lite/data")

#: Canonical dataset name -> torchvision class name (also its folder under the root).
DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
#: How the book names each dataset in prose and tables.
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
#: Per-pixel mean and standard deviation of each *training* split, pixels scaled to [0, 1].
#: Inputs are standardised with them so that both datasets reach the network on the same
#: scale (``tests/test_data.py`` recomputes them from the files).
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
#: Both datasets: 28 × 28 grey images, flattened, and 10 classes.
INPUT_DIM = 28 * 28
NUM_CLASSES = 10


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor downloadable; the message says where to put it."""


def canonical_name(name: str) -> str:
    """``"MNIST"``, ``"mnist"`` -> ``"mnist"``; ``"FashionMNIST"``, ``"fashion-mnist"`` ->
    ``"fashion_mnist"``. Unknown names raise ``ValueError`` listing the valid ones."""
    key = str(name).lower().replace("-", "_").replace(" ", "_")
    key = {"fashionmnist": "fashion_mnist", "fmnist": "fashion_mnist"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return key


def data_root(root: Union[str, Path, None] = None) -> Path:
    """The data folder: ``root`` if given, else ``$VSML_DATA``, else ``~/.cache/vsml_lite/data``."""
    if root is None:
        root = os.environ.get(DATA_ENV_VAR) or DEFAULT_DATA_ROOT
    return Path(root).expanduser()


@dataclass
class TensorData:
    """A whole split in memory.

    Attributes:
        images: ``[n, 784]`` float32, standardised with :data:`NORMALIZATION` (or in [0, 1]).
        labels: ``[n]`` int64 class indices in ``0..9``.
        name: canonical dataset name.
        train: ``True`` for the training split.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    train: bool

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: Union[str, torch.device]) -> "TensorData":
        """A copy on ``device``."""
        return TensorData(self.images.to(device), self.labels.to(device), self.name, self.train)


def load_dataset(
    name: str,
    train: bool = True,
    root: Union[str, Path, None] = None,
    download: bool = True,
    normalize: bool = True,
    stats_of: Optional[str] = None,
) -> TensorData:
    """Load MNIST or Fashion-MNIST from its idx files as flat tensors, checked first
    (:func:`check_dataset`): a damaged file is an error naming the file, never a run that
    trains on it.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"`` (see :func:`canonical_name`).
        train: training (60,000) or test (10,000) split.
        root: data folder; default from :func:`data_root`.
        download: let torchvision download the files when they are not in ``root``.
        normalize: standardise pixels with :data:`NORMALIZATION` (else scale to [0, 1]).
        stats_of: the dataset whose pixel mean and std standardise the images (default: this
            one). The paper's official code standardises Fashion-MNIST with MNIST's.

    Raises:
        DatasetNotFoundError: the files are missing and could not be downloaded.
        DatasetCorruptError: a file is truncated, malformed or not the published one.
    """
    key = canonical_name(name)
    images_file, labels_file = check_dataset(key, train, root, download)
    raw = _read_idx(images_file)  # [n, 28, 28] uint8
    images = torch.from_numpy(raw.reshape(len(raw), INPUT_DIM)).to(torch.float32).div_(255.0)  # [n, 784]
    if normalize:
        mean, std = NORMALIZATION[canonical_name(stats_of) if stats_of else key]
        images = images.sub_(mean).div_(std)
    labels = torch.from_numpy(_read_idx(labels_file).astype("int64"))  # [n]
    return TensorData(images=images, labels=labels, name=key, train=train)


class DatasetCorruptError(ValueError):
    """A dataset file is truncated, malformed, or not the file that was published."""


#: idx files of each split, images then labels (torchvision's names, uncompressed).
SPLIT_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
#: Examples per split, for both datasets.
SPLIT_SIZES = {True: 60_000, False: 10_000}
#: SHA-256 of the published files (the ``.gz`` files torchvision downloads and checks by MD5,
#: uncompressed). A ``SHA256SUMS`` file in the data folder, where there is one, is checked too.
PUBLISHED_SHA256 = {
    "MNIST/raw/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "MNIST/raw/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "MNIST/raw/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "MNIST/raw/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "FashionMNIST/raw/train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "FashionMNIST/raw/train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "FashionMNIST/raw/t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "FashionMNIST/raw/t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
#: idx magic numbers: unsigned bytes, with 3 (images) or 1 (labels) dimensions.
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}

# Files already checked in this process, by (path, size, modification time): hashing every
# file again each time a chapter loads a split would cost a fraction of a second per load.
_checked: Dict[Tuple[str, int, int], str] = {}


def check_dataset(name: str, train: bool = True, root: Union[str, Path, None] = None,
                  download: bool = True) -> Tuple[Path, Path]:
    """The split's ``(images, labels)`` idx files, downloaded if missing and allowed, each
    checked: header, size, labels in ``0..9``, and SHA-256 against the published file and any
    ``SHA256SUMS`` in the data folder. Call it before a long run for every dataset the run
    will need, so a missing or damaged one stops it at the start, not at the end.

    Raises:
        DatasetNotFoundError: a file is missing and could not be downloaded.
        DatasetCorruptError: a file is truncated, malformed or not the published one.
    """
    key = canonical_name(name)
    folder = data_root(root)
    sub = DATASETS[key]
    files = [folder / sub / "raw" / f for f in SPLIT_FILES[train]]
    if not all(f.exists() for f in files):
        _download(key, train, folder, download)
    sums = _sha256sums(folder)
    for f, dims in zip(files, (3, 1)):
        rel = f"{sub}/raw/{f.name}"
        stat = f.stat()
        if _checked.get((str(f), stat.st_size, stat.st_mtime_ns)) == rel:
            continue
        shape = _idx_shape(f, dims)
        if shape[0] != SPLIT_SIZES[train] or shape[1:] not in ((28, 28), ()):
            raise DatasetCorruptError(f"{f}: holds {list(shape)}, not the {SPLIT_SIZES[train]:,} "
                                      f"{'28 × 28 images' if dims == 3 else 'labels'} of {sub}'s split")
        digest = file_sha256(f)
        for want, source in ((PUBLISHED_SHA256.get(rel), "the published file"), (sums.get(rel), "SHA256SUMS")):
            if want is not None and digest != want:
                raise DatasetCorruptError(
                    f"{f}: its SHA-256 ({digest[:16]}...) differs from {source}'s ({want[:16]}...): the file "
                    f"is damaged or is not {sub}'s. Delete it and load again to download it afresh"
                    f"{'' if download else ' (with download allowed)'}, or copy the original file there.")
        if dims == 1:
            labels = _read_idx(f)
            if labels.max() >= NUM_CLASSES:
                bad = int((labels >= NUM_CLASSES).nonzero()[0][0])
                raise DatasetCorruptError(f"{f}: label {int(labels[bad])} at index {bad} is outside 0..{NUM_CLASSES - 1}")
        _checked[(str(f), stat.st_size, stat.st_mtime_ns)] = rel
    return files[0], files[1]


def check_datasets(names=tuple(DATASETS), root: Union[str, Path, None] = None, download: bool = True) -> None:
    """:func:`check_dataset` for both splits of every dataset in ``names``: what a long run
    calls before it starts, so that a dataset it needs only at the end is not found missing
    (or damaged) after hours of training."""
    for name in names:
        for train in (True, False):
            check_dataset(name, train, root, download)


def _download(key: str, train: bool, folder: Path, download: bool) -> None:
    """Fetch a split through torchvision (which checks the downloads' MD5 sums)."""
    if not download:
        raise DatasetNotFoundError(_not_found_message(key, folder, "download=False"))
    from torchvision import datasets  # imported here: torchvision is slow to import

    try:
        getattr(datasets, DATASETS[key])(root=str(folder), train=train, download=True)
    except Exception as err:  # no network, mirror down, read-only folder, ...
        reason = " ".join(str(err).split())  # torchvision's message spans lines
        raise DatasetNotFoundError(
            _not_found_message(key, folder, f"download failed: {type(err).__name__}: {reason}")) from err


def _idx_shape(path: Path, dims: int) -> Tuple[int, ...]:
    """The shape an idx file's header declares, after checking its magic number and that the
    file is exactly as long as the header says."""
    size = path.stat().st_size
    header = 4 + 4 * dims
    with open(path, "rb") as f:
        head = f.read(header)
    if len(head) < header:
        raise DatasetCorruptError(f"{path}: {size} bytes, too short for an idx header (truncated or empty)")
    magic, *shape = struct.unpack(f">{1 + dims}I", head)
    if magic != IDX_MAGIC[dims]:
        raise DatasetCorruptError(f"{path}: not an idx file of {dims}-d unsigned bytes "
                                  f"(magic number {magic:#010x}, expected {IDX_MAGIC[dims]:#010x})")
    want = header + math.prod(shape)
    if size != want:
        raise DatasetCorruptError(f"{path}: {size:,} bytes, but its header declares {list(shape)} "
                                  f"({want:,} bytes): the file is {'truncated' if size < want else 'too long'}")
    return tuple(shape)


def _read_idx(path: Path):
    """An idx file of unsigned bytes as a numpy array of the shape its header declares."""
    import numpy as np

    data = path.read_bytes()
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def _sha256sums(folder: Path) -> Dict[str, str]:
    """``SHA256SUMS`` in the data folder (``<digest>  <relative path>`` lines), if there is one."""
    path = folder / "SHA256SUMS"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def _not_found_message(key: str, folder: Path, why: str) -> str:
    sub = DATASETS[key]
    return (
        f"{sub} not found under {folder} ({why}). Put torchvision's files in "
        f"{folder / sub / 'raw'} (train-images-idx3-ubyte, ...), or set the environment variable "
        f"{DATA_ENV_VAR} to a folder that has them, or allow downloading on a machine with internet."
    )


def downsample(images: torch.Tensor, side: int) -> torch.Tensor:
    """Average-pool flat 28 × 28 images to ``side × side``: ``[n, 784] -> [n, side²]``.

    The ``cpu`` and ``smoke`` presets use it to shrink the input layer (and with it the number
    of sub-LSTMs, which grows with the input size) so that chapters run on a laptop;
    ``side = 28`` returns the images unchanged. ``side`` must divide 28 (28, 14, 7, 4, 2, 1).
    """
    if images.dim() != 2 or images.shape[1] != INPUT_DIM:
        raise ValueError(f"images must have shape [n, {INPUT_DIM}], got {list(images.shape)}")
    if side < 1 or 28 % side:
        raise ValueError(f"side must divide 28 (28, 14, 7, 4, 2, 1), got {side}")
    if side == 28:
        return images
    k = 28 // side
    pooled = torch.nn.functional.avg_pool2d(images.reshape(-1, 1, 28, 28), k)  # [n, 1, side, side]
    return pooled.reshape(images.shape[0], side * side)


def downsample_dataset(data: "TensorData", side: int) -> "TensorData":
    """A :class:`TensorData` whose images went through :func:`downsample`."""
    return TensorData(downsample(data.images, side), data.labels, data.name, data.train)


class _Stream:
    """Common length bookkeeping of the streams: ``steps=None`` means endless."""

    steps: Optional[int]

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError(f"an endless {type(self).__name__} (steps=None) has no length")
        return self.steps


class OnlineStream(_Stream):
    """A seeded stream of a dataset, one example per step: the paper's online setting.

    Each pass draws a fresh random permutation from its own generator, so two streams with the
    same seed yield the same examples in the same order, whatever else draws random numbers.

    Args:
        data: a :class:`TensorData`.
        seed: seed of the stream's own generator.
        steps: number of steps to yield; ``None`` for an endless stream.
        batch_size: ``None`` yields ``x: [784]``, ``y: []``; an int yields ``x: [batch, 784]``,
            ``y: [batch]`` (a learner batch, Appendix D).
        device: where the yielded tensors live (default: where ``data`` lives).

    Yields:
        ``(x, y)`` pairs.
    """

    def __init__(
        self,
        data: TensorData,
        seed: int,
        steps: Optional[int] = None,
        batch_size: Optional[int] = None,
        device: Union[str, torch.device, None] = None,
    ) -> None:
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be >= 0 or None, got {steps}")
        if batch_size is not None and not 1 <= batch_size <= len(data):
            raise ValueError(f"batch_size must be in 1..{len(data)}, got {batch_size}")
        self.data = data
        self.seed = seed
        self.steps = steps
        self.batch_size = batch_size
        self.device = device

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        n, per_step = len(self.data), self.batch_size or 1
        order, pos, step = torch.randperm(n, generator=gen), 0, 0
        while self.steps is None or step < self.steps:
            if pos + per_step > n:  # start a new pass over the data
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos : pos + per_step]
            pos += per_step
            x, y = self.data.images[idx], self.data.labels[idx]
            if self.device is not None:
                x, y = x.to(self.device), y.to(self.device)
            if self.batch_size is None:
                x, y = x[0], y[0]
            yield x, y
            step += 1


class RandomStream(_Stream):
    """The random data of Table 1: inputs ``x ~ Normal(0, std²)``, labels uniform over classes.

    Args:
        seed: seed of the stream's own generator.
        dim: input dimension (default 784, like the image datasets).
        std: input standard deviation (Table 1: 2).
        steps: number of steps; ``None`` for an endless stream.
        batch_size: ``None`` for single examples, else a batch per step (see :class:`OnlineStream`).
        num_classes: range of the labels.
        device: where the tensors live; they are drawn on the CPU so that every device gives
            the same numbers for one seed.
    """

    def __init__(
        self,
        seed: int,
        dim: int = INPUT_DIM,
        std: float = RANDOM_DATA_STD,
        steps: Optional[int] = None,
        batch_size: Optional[int] = None,
        num_classes: int = NUM_CLASSES,
        device: Union[str, torch.device, None] = None,
    ) -> None:
        if dim < 1 or num_classes < 1 or std <= 0:
            raise ValueError(f"need dim >= 1, num_classes >= 1, std > 0; got {dim}, {num_classes}, {std}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        self.seed, self.dim, self.std = seed, dim, std
        self.steps, self.batch_size = steps, batch_size
        self.num_classes, self.device = num_classes, device

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed)
        shape = (self.batch_size,) if self.batch_size is not None else ()
        step = 0
        while self.steps is None or step < self.steps:
            x = torch.randn(*shape, self.dim, generator=gen) * self.std  # [(batch,) dim]
            y = torch.randint(self.num_classes, shape, generator=gen)  # [(batch,)]
            if self.device is not None:
                x, y = x.to(self.device), y.to(self.device)
            yield x, y
            step += 1
