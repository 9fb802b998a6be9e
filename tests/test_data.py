"""The data module: local folder via $VSML_DATA, clear errors, normalisation, seeded streams."""

import sys

import pytest
import torch

import vsml_lite as vl
from vsml_lite import data as vdata


def test_import_loads_no_data_and_no_torchvision():
    import subprocess

    code = "import sys, vsml_lite; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv(vl.DATA_ENV_VAR, str(tmp_path / "env"))
    assert vl.data_root() == tmp_path / "env"
    assert vl.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(vl.DATA_ENV_VAR)
    assert vl.data_root() == vdata.DEFAULT_DATA_ROOT.expanduser()


def test_missing_data_without_download_names_the_variable(tmp_path):
    with pytest.raises(vl.DatasetNotFoundError, match=r"VSML_DATA") as info:
        vl.load_dataset("mnist", root=tmp_path, download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(info.value)


def test_failed_download_names_the_variable(tmp_path, monkeypatch):
    """Simulate an offline machine: torchvision's download raises; no network is touched."""
    import torchvision.datasets.mnist as tv_mnist

    def offline(self):
        raise RuntimeError("Error downloading: <urlopen error no network>")

    monkeypatch.setattr(tv_mnist.MNIST, "download", offline)
    with pytest.raises(vl.DatasetNotFoundError, match=r"download failed.*no network.*VSML_DATA"):
        vl.load_dataset("fashion_mnist", root=tmp_path, download=True)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'; valid: mnist, fashion_mnist"):
        vl.load_dataset("cifar10")
    assert vdata.canonical_name("FashionMNIST") == "fashion_mnist"
    assert vdata.canonical_name("Fashion-MNIST") == "fashion_mnist"


@pytest.mark.parametrize("name,size", [("mnist", 10_000), ("fashion_mnist", 10_000)])
def test_load_test_split(data_root, name, size):
    d = vl.load_dataset(name, train=False, download=False)
    assert d.images.shape == (size, vl.INPUT_DIM) and d.images.dtype == torch.float32
    assert d.labels.shape == (size,) and d.labels.dtype == torch.int64
    assert set(d.labels.unique().tolist()) == set(range(vl.NUM_CLASSES))
    raw = vl.load_dataset(name, train=False, download=False, normalize=False)
    assert 0.0 <= raw.images.min() and raw.images.max() <= 1.0
    mean, std = vl.NORMALIZATION[name]
    torch.testing.assert_close(d.images, (raw.images - mean) / std)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_normalization_constants_match_training_split(data_root, name):
    raw = vl.load_dataset(name, train=True, download=False, normalize=False).images
    mean, std = vl.NORMALIZATION[name]
    assert abs(raw.mean().item() - mean) < 5e-4
    assert abs(raw.std().item() - std) < 5e-4


def _toy(n=20):
    images = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 4).clone()
    return vl.TensorData(images=images, labels=torch.arange(n) % 10, name="toy", train=True)


def test_online_stream_is_seeded_and_one_example_per_step():
    data = _toy()
    a = [(x.clone(), y.clone()) for x, y in vl.OnlineStream(data, seed=1, steps=50)]
    b = [(x.clone(), y.clone()) for x, y in vl.OnlineStream(data, seed=1, steps=50)]
    c = [x for x, _ in vl.OnlineStream(data, seed=2, steps=50)]
    assert len(a) == 50 and a[0][0].shape == (4,) and a[0][1].shape == ()
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(xa, xc) for (xa, _), xc in zip(a, c))
    # every pass visits every example once, and labels stay with their images
    first_pass = sorted(int(x[0]) for x, _ in a[:20])
    assert first_pass == list(range(20))
    assert all(int(y) == int(x[0]) % 10 for x, y in a)
    # other draws from the global generator do not change the stream
    torch.manual_seed(99)
    torch.rand(5)
    d = [x for x, _ in vl.OnlineStream(data, seed=1, steps=50)]
    assert all(torch.equal(xa, xd) for (xa, _), xd in zip(a, d))


def test_online_stream_batches_and_errors():
    data = _toy()
    xs = list(vl.OnlineStream(data, seed=0, steps=3, batch_size=8))
    assert xs[0][0].shape == (8, 4) and xs[0][1].shape == (8,)
    assert len(vl.OnlineStream(data, seed=0, steps=3)) == 3
    with pytest.raises(ValueError, match="batch_size must be in 1..20, got 21"):
        vl.OnlineStream(data, seed=0, batch_size=21)
    with pytest.raises(TypeError, match="endless"):
        len(vl.OnlineStream(data, seed=0))


def test_random_stream_matches_table1():
    xs = torch.stack([x for x, _ in vl.RandomStream(seed=0, dim=50, steps=400)])
    assert xs.shape == (400, 50)
    assert abs(xs.std().item() - vl.RANDOM_DATA_STD) < 0.05
    assert abs(xs.mean().item()) < 0.05
    again = torch.stack([x for x, _ in vl.RandomStream(seed=0, dim=50, steps=400)])
    assert torch.equal(xs, again)
    x, y = next(iter(vl.RandomStream(seed=1, batch_size=64)))
    assert x.shape == (64, vl.INPUT_DIM) and y.shape == (64,) and int(y.max()) < vl.NUM_CLASSES


def test_fashion_mnist_can_be_standardised_with_mnists_statistics(data_root):
    """The official code standardises Fashion-MNIST with MNIST's pixel mean and std."""
    own = vl.load_dataset("fashion_mnist", train=False, root=data_root, download=False)
    official = vl.load_dataset("fashion_mnist", train=False, root=data_root, download=False, stats_of="mnist")
    (m_mean, m_std), (f_mean, f_std) = vl.NORMALIZATION["mnist"], vl.NORMALIZATION["fashion_mnist"]
    torch.testing.assert_close(official.images, (own.images * f_std + f_mean - m_mean) / m_std, rtol=1e-4, atol=1e-4)
    assert abs(own.images.mean().item()) < 0.01 and official.images.mean().item() > 0.4  # shifted
    cfg = vl.get_config("smoke").override({"meta_learning.fashion_stats": "mnist", "data.root": str(data_root),
                                           "data.download": False, "device": "cpu"})
    side = cfg.meta_learning.input_side
    loaded = vl.metalearn.load_split(cfg, "fashion_mnist", train=False)
    assert loaded.images.shape[1] == side * side and loaded.images.mean().item() > 0.4
    with pytest.raises(ValueError, match="fashion_stats"):
        cfg.override({"meta_learning.fashion_stats": "fashion"})
