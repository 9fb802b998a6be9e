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

import hashlib
import io
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

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


#: Folders of the repository that runs write and code never reads as code: the campaign's
#: checkpoints and progress, benchmark records. Uncommitted changes there leave the code
#: version clean, so a GPU window's second command, whose copy of the repository holds the
#: first command's checkpoints over an older commit, records that commit's code, which is
#: the code it runs.
RUN_OUTPUT_FOLDERS = ("campaign", "benchmarks")


def _describe_checkout(root: Optional[Path] = None) -> str:
    """``git describe`` of the checkout the package lives in (``root``: its top folder), with
    ``-dirty`` for uncommitted changes to tracked files outside :data:`RUN_OUTPUT_FOLDERS`,
    or the bare package version.

    Git is asked only when the package's own files are tracked in that repository: a package
    pip-installed into a virtual environment that happens to sit inside some other git
    repository must not record that repository's commit as its code version."""
    from . import __version__

    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    try:
        run = dict(cwd=root, capture_output=True, text=True, timeout=10, check=True)
        subprocess.run(["git", "ls-files", "--error-unmatch", "--", f"{Path(__file__).parent.name}/__init__.py"], **run)
        out = subprocess.run(["git", "describe", "--always", "--abbrev=12"], **run)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  *(f":(exclude){f}" for f in RUN_OUTPUT_FOLDERS)], **run).stdout.strip()
        return f"{__version__}+git.{out.stdout.strip()}{'-dirty' if changed else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def is_dirty(version: Optional[str] = None) -> bool:
    """Whether ``version`` (default: this process's :func:`code_version`) is an uncommitted tree."""
    return (version or code_version()).endswith("-dirty")


def require_clean_tree(allow_dirty: bool = False, what: str = "an artifact") -> None:
    """Refuse to make ``what`` from uncommitted code (its record could not name the code that
    ran); ``allow_dirty`` (the scripts' ``--allow-dirty``) lets it through, and the record's
    code version then ends in ``-dirty``."""
    if is_dirty() and not allow_dirty:
        raise SystemExit(
            f"refusing to make {what} from an uncommitted tree (code version {code_version()}): "
            f"commit first, so the record names the code that ran, or pass --allow-dirty "
            f"(the record then says -dirty)")


def retrain_requested() -> bool:
    """Whether ``$VSML_RETRAIN`` asks chapters to retrain live (``1``, ``true`` or ``yes``)."""
    return os.environ.get(RETRAIN_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


def pretrained_path(kind: str, preset: str) -> Path:
    """Where the shipped artifact of ``kind`` at ``preset`` scale lives (without suffix)."""
    return PRETRAINED_DIR / f"{kind}_{preset}"


#: The label of the shipped artifact each chapter shows, by kind (the README's artifact table
#: says which command made each). One place, so that chapters, tests, scripts and Chapter 7
#: cannot disagree on which artifact is "the shipped one".
SHIPPED = {"forward_cloning": "cpu", "backprop_cloning": "cpu", "meta_learning": "cpu",
           "improve_backprop": "cpu"}


def shipped_path(kind: str) -> Path:
    """Where the shipped artifact of ``kind`` lives: :func:`pretrained_path` at its label in
    :data:`SHIPPED`."""
    if kind not in SHIPPED:
        raise ValueError(f"no shipped artifact of kind {kind!r}; kinds: {sorted(SHIPPED)}")
    return pretrained_path(kind, SHIPPED[kind])


def artifact_exists(path: Union[str, Path]) -> bool:
    """Whether an artifact has been written at ``path`` (without suffix). :func:`save_artifact`
    writes the ``.json`` record after the ``.pt``, so a record means a finished pair (a stray
    ``.pt`` alone does not count)."""
    return Path(path).with_suffix(".json").exists()


def live_path(kind: str, preset: str) -> Path:
    """Where a live training run of ``kind`` at ``preset`` writes (without suffix):
    ``$VSML_ARTIFACTS`` or ``~/.cache/vsml_lite/artifacts``."""
    root = Path(os.environ.get(LIVE_ENV_VAR) or DEFAULT_LIVE_DIR).expanduser()
    return root / f"{kind}_{preset}"


#: The script that makes each kind of artifact (named when one is missing or torn).
SCRIPTS = {"forward_cloning": "train_forward_cloning.py", "backprop_cloning": "train_backprop_cloning.py",
           "meta_learning": "train_meta_learning.py", "improve_backprop": "improve_backprop.py"}


class ArtifactError(ValueError):
    """An artifact's two files do not belong together, or are not the kind asked for."""


@dataclass
class Artifact:
    """A loaded artifact: ``tensors`` (from ``.pt``) and ``meta`` (from ``.json``)."""

    tensors: Dict[str, Any]
    meta: Dict[str, Any]

    def expect(self, kind: str) -> "Artifact":
        """This artifact, if it is of ``kind``; else :class:`ArtifactError` naming both."""
        found = self.meta.get("kind")
        if found != kind:
            raise ArtifactError(f"expected a {kind!r} artifact, got a {found!r} one "
                                f"(made by scripts/{SCRIPTS.get(found, '?')})")
        return self


def save_artifact(path: Union[str, Path], tensors: Dict[str, Any], meta: Dict[str, Any]) -> Path:
    """Write ``<path>.pt`` and ``<path>.json``. ``meta`` must hold ``kind``, ``preset``,
    ``seed``, ``config`` and ``metrics``; ``code_version`` and ``weights_sha256`` (the
    SHA-256 of the ``.pt`` file, which :func:`load_artifact` checks) are added."""
    missing = {"kind", "preset", "seed", "config", "metrics"} - set(meta)
    if missing:
        raise ValueError(f"artifact meta lacks {sorted(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    weights = buffer.getvalue()
    meta = {**meta, "code_version": meta.get("code_version") or code_version(),
            "weights_sha256": hashlib.sha256(weights).hexdigest()}
    _atomic_write(path.with_suffix(".pt"), lambda f: f.write(weights))
    text = (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(text))
    return path


def code_versions(meta: Dict[str, Any]) -> List[str]:
    """The code versions that made an artifact, in the order they ran: its ``code_versions``
    (a run resumed across sessions has several; Chapter 5's record keeps one list per model,
    which are merged in order, each version once), else its one ``code_version``."""
    versions = meta.get("code_versions") or [meta["code_version"]]
    if isinstance(versions, dict):
        versions = [v for vs in versions.values() for v in vs]
    return list(dict.fromkeys(versions))


def describe_code_versions(meta: Dict[str, Any], labels: Optional[Dict[str, str]] = None) -> str:
    """:func:`code_versions` in words, for a chapter's scale note: ``"code <v>"`` for one,
    else how many, the first and the last. A record that keeps one list per model (Chapter 5)
    is described model by model (named by ``labels`` where given), after the code that wrote
    the record: models trained before code versions were kept have none of their own."""
    versions = meta.get("code_versions")
    if isinstance(versions, dict):
        trained = "".join(f"; “{(labels or {}).get(k, k)}” was trained by "
                          f"{describe_code_versions({'code_versions': vs})}" for k, vs in versions.items())
        return f"code {meta['code_version']} wrote the record{trained}"
    versions = code_versions(meta)
    if len(versions) == 1:
        return f"code {versions[0]}"
    return (f"{len(versions)} code versions across its sessions, the first {versions[0]}, the last "
            f"{versions[-1]} (the record lists them all)")


def load_artifact(path: Union[str, Path], kind: Optional[str] = None) -> Artifact:
    """Read an artifact written by :func:`save_artifact`.

    Raises:
        FileNotFoundError: a file of the pair is missing (the message names the script).
        ArtifactError: the ``.pt`` is not the file its ``.json`` records (damaged, or one of
            the pair replaced: a retrain interrupted between the two, a copy from elsewhere),
            or the artifact is not of ``kind``.
    """
    path = Path(path)
    pt, js = path.with_suffix(".pt"), path.with_suffix(".json")
    remake = f"scripts/{SCRIPTS.get(kind, 'train_forward_cloning.py')}"
    if not pt.exists() or not js.exists():
        raise FileNotFoundError(
            f"artifact {path} (.pt and .json) not found; make it with {remake} "
            f"(e.g. python {remake} --preset cpu --out {path})")
    try:
        meta = json.loads(js.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"artifact record {js} is not valid JSON ({err}); remake it with {remake}") from None
    remake = f"scripts/{SCRIPTS.get(meta.get('kind') or kind, 'train_forward_cloning.py')}"
    weights = pt.read_bytes()
    recorded = meta.get("weights_sha256")
    if recorded is not None and hashlib.sha256(weights).hexdigest() != recorded:
        raise ArtifactError(
            f"artifact {path}: {pt.name} is not the file {js.name} records (SHA-256 differs): it "
            f"was damaged, or one of the pair was replaced. Restore both files (e.g. git checkout "
            f"-- {pt} {js}) or remake them with python {remake}")
    artifact = Artifact(tensors=torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True), meta=meta)
    return artifact.expect(kind) if kind is not None else artifact


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
