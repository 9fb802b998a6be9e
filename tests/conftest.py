"""Shared test fixtures. Tests are CPU-only, deterministic and offline."""

from pathlib import Path

import pytest
import torch

import vsml_lite as vl


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The local data folder; tests that need MNIST skip with the reason when it is absent."""
    root = vl.data_root()
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not under {root}; set ${vl.DATA_ENV_VAR} (CI sets ../shared/data)")
    return root
