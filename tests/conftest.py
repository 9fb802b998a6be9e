"""Shared test fixtures. Tests are CPU-only, deterministic and offline."""

import os
import signal
from pathlib import Path

import pytest
import torch

import vsml_lite as vl


def pytest_configure(config):
    # A campaign may hold one of the two cores: use the free ones (see vl.device.use_free_cores).
    vl.device.use_free_cores()


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


@pytest.fixture
def interrupt_on_call(monkeypatch):
    """``arm(module, name, n)`` patches ``module.name`` so that its ``n``-th call first sends
    this process SIGINT (a Ctrl-C in the middle of a run), then runs as usual. ``arm`` returns
    a function that puts the real one back, for the run that resumes."""

    def arm(module, name: str, n: int):
        real, calls = getattr(module, name), {"n": 0}

        def interrupting(*args, **kw):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kw)

        monkeypatch.setattr(module, name, interrupting)
        return lambda: monkeypatch.setattr(module, name, real)

    return arm
