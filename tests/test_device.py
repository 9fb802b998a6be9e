"""Device and seed helpers."""

import os

import numpy as np
import pytest
import torch

import vsml_lite as vl


def test_auto_device_matches_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert vl.get_device("auto").type == expected
    assert vl.get_device(None).type == expected
    assert vl.get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on CPU-only machines")
def test_explicit_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        vl.get_device("cuda")


def test_dtype_names():
    assert vl.get_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        vl.get_dtype("float16")


def test_seed_everything_is_repeatable():
    gen = vl.seed_everything(123)
    a = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=gen))
    gen = vl.seed_everything(123)
    b = (torch.rand(3), np.random.rand(3), torch.rand(2, generator=gen))
    torch.testing.assert_close(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    torch.testing.assert_close(a[2], b[2])


@pytest.mark.gpu
def test_vs_step_on_gpu_matches_cpu():
    A, N = 4, 8
    gen = torch.Generator().manual_seed(0)
    s, W, C, b = (torch.randn(A, A, N, generator=gen), torch.randn(N, N, generator=gen),
                  torch.randn(N, N, generator=gen), torch.randn(N, generator=gen))
    cpu = vl.vs_meta_rnn_step(s, W, C, b)
    gpu = vl.vs_meta_rnn_step(*(t.cuda() for t in (s, W, C, b)))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)


def test_busy_cores_sees_another_process_spinning():
    import subprocess
    import sys
    import time

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = vl.device.busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy > 0.5
    assert 1 <= vl.device.free_cores(0.05) <= (os.cpu_count() or 1)


def test_training_runs_keep_freed_memory_on_glibc(monkeypatch):
    """Returning freed blocks to the system cost 13-20% of a CPU training iteration in page
    faults; training.run asks glibc to keep them."""
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert vl.device.keep_freed_memory() is True
    calls = []
    monkeypatch.setattr(vl.training, "keep_freed_memory", lambda: calls.append(1))

    class One:
        name, total, log_every, checkpoint_every = "one", 1, 1, 1

        def step(self, i):
            return {"loss": torch.zeros(())}

        def state_dict(self):
            return {}

        def load_state_dict(self, s):
            pass

    vl.training.run(One(), progress=False)
    assert calls == [1]
