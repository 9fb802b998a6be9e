"""Shipped artifacts (weights plus a JSON record) and resumable training checkpoints.

An artifact is two files side by side, ``<name>.pt`` (tensors) and ``<name>.json`` (what made
them: kind, preset, seed, the full config, the code version, metrics and curves). The
artifacts the book loads live in ``vsml_lite/pretrained/`` so that ``pip install`` ships them
(Colab included); the scripts in ``scripts/`` make them.

Example:
    >>> record = load_artifact(pretrained_path("forward_cloning", "cpu"))
    >>> record.meta["preset"], record.meta["metrics"]["trained"]["mean_abs_error"]
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import torch

#: Folder of the artifacts shipped with the package.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: Environment variable that asks chapters to retrain live instead of loading artifacts.
RETRAIN_ENV_VAR = "VSML_RETRAIN"
#: Environment variable naming where live (re)training writes artifacts and checkpoints.
LIVE_ENV_VAR = "VSML_ARTIFACTS"
#: Where live training writes when ``$VSML_ARTIFACTS`` is unset: outside the repository, so
#: a reader's runs never overwrite shipped artifacts.
DEFAULT_LIVE_DIR = Path("~/.cache/vsml_lite/artifacts")


def code_version() -> str:
    """The code this process runs: the git commit of the package's checkout when the package
    was imported (with ``-dirty`` for uncommitted changes), or the package version where there
    is no git checkout (a pip install). Taken at import, not at save time: a run that lasts an
    hour records the code it ran, not a commit made while it ran."""
    return _CODE_VERSION_AT_IMPORT


def _describe_checkout() -> str:
    """``git describe`` of the checkout the package lives in, or the bare package version."""
    from . import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root,
                             capture_output=True, text=True, timeout=10, check=True)
        return f"{__version__}+git.{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def retrain_requested() -> bool:
    """Whether ``$VSML_RETRAIN`` asks chapters to retrain live (``1``, ``true`` or ``yes``)."""
    return os.environ.get(RETRAIN_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def pretrained_path(kind: str, preset: str) -> Path:
    """Where the shipped artifact of ``kind`` at ``preset`` scale lives (without suffix)."""
    return PRETRAINED_DIR / f"{kind}_{preset}"


def live_path(kind: str, preset: str) -> Path:
    """Where a live training run of ``kind`` at ``preset`` writes (without suffix):
    ``$VSML_ARTIFACTS`` or ``~/.cache/vsml_lite/artifacts``."""
    root = Path(os.environ.get(LIVE_ENV_VAR) or DEFAULT_LIVE_DIR).expanduser()
    return root / f"{kind}_{preset}"


@dataclass
class Artifact:
    """A loaded artifact: ``tensors`` (from ``.pt``) and ``meta`` (from ``.json``)."""

    tensors: Dict[str, Any]
    meta: Dict[str, Any]


def save_artifact(path: Union[str, Path], tensors: Dict[str, Any], meta: Dict[str, Any]) -> Path:
    """Write ``<path>.pt`` and ``<path>.json``. ``meta`` must hold ``kind``, ``preset``,
    ``seed``, ``config`` and ``metrics``; ``code_version`` is added."""
    missing = {"kind", "preset", "seed", "config", "metrics"} - set(meta)
    if missing:
        raise ValueError(f"artifact meta lacks {sorted(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "code_version": meta.get("code_version") or code_version()}
    _atomic_write(path.with_suffix(".pt"), lambda f: torch.save(tensors, f))
    text = (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(text))
    return path


def load_artifact(path: Union[str, Path]) -> Artifact:
    """Read an artifact written by :func:`save_artifact`; a missing one names the script."""
    path = Path(path)
    pt, js = path.with_suffix(".pt"), path.with_suffix(".json")
    if not pt.exists() or not js.exists():
        raise FileNotFoundError(
            f"artifact {path} (.pt and .json) not found; make it with the matching script in "
            f"scripts/ (e.g. python scripts/train_forward_cloning.py --preset cpu)")
    return Artifact(tensors=torch.load(pt, map_location="cpu", weights_only=True),
                    meta=json.loads(js.read_text()))


def _atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Write a file so that a reader sees either the old file or the whole new one.

    ``write(f)`` fills a temporary file of this process's own (``.<name>.<pid>.<random>.tmp``
    in the same folder), which is flushed to disk and then renamed over ``path``; a rename
    within one folder is atomic. A fixed temporary name would be shared by two processes
    writing the same path: one renames the other's half-written file, or finds it gone.
    Neither an interrupt nor a concurrent writer leaves a torn file (``tests/test_training.py``).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: Union[str, Path], state: Dict[str, Any]) -> None:
    """Atomically write a training checkpoint (see :func:`_atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """The checkpoint at ``path``, or ``None`` when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


#: What :func:`code_version` returns, fixed when the package is imported.
_CODE_VERSION_AT_IMPORT = _describe_checkout()
