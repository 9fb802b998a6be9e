"""Bad input, as an ordinary user might give it: each case gets an error that names the
problem (or, for artifacts and the kernel cache, the fix), never a silent wrong answer."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vsml_lite as vl
from vsml_lite import artifacts, data, fused, network
from vsml_lite.metalearn import learners as ml_learners

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import _cli  # noqa: E402  (the scripts' shared command line)


def _set(*items, preset="smoke"):
    return vl.get_config(preset).override(_cli.parse_set(items))


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("false", False), ("False", False), ("0", False), ("no", False),
                                         ("true", True), ("1", True), ("on", True)])
def test_set_parses_booleans_by_the_fields_type(text, value):
    assert _set(f"network.position_inputs={text}").network.position_inputs is value


@pytest.mark.parametrize("item, words", [
    ("network.position_inputs=none", ["network.position_inputs", "'none'", "true or false"]),
    ("meta_learning.iterations=-3", ["meta_learning.iterations=-3", ">= 1"]),
    ("meta_learning.meta_batch=0", ["meta_learning.meta_batch=0", ">= 1"]),
    ("dtype=float16", ["dtype='float16'", "float32"]),
    ("meta_learning.log_every=0", ["meta_learning.log_every=0"]),
    ("meta_learning.episode_length=0", ["meta_learning.episode_length=0"]),
    ("backprop_cloning.test_seeds=0", ["backprop_cloning.test_seeds=0"]),
    ("meta_learning.iterations=abc", ["meta_learning.iterations='abc'", "whole number"]),
    ("meta_learning.iterations=2.5", ["meta_learning.iterations", "whole number"]),
    ("network.meta_test_state_clip=nan", ["network.meta_test_state_clip=nan", "finite"]),
    ("network.meta_test_state_clip=-1", ["network.meta_test_state_clip=-1.0"]),
    ("network.reduce=max", ["network.reduce='max'", "'mean', 'sum'"]),
    ("backprop_cloning.hold_fraction=1.5", ["backprop_cloning.hold_fraction=1.5", "[0, 1]"]),
    ("backprop_cloning.input_side=5", ["backprop_cloning.input_side=5", "28"]),
    ("backprop_cloning.update_part_weights=(1.0)", ["update_part_weights", "exactly 2"]),
    ("improve.population=1", ["improve.population=1", "or 0"]),
    ("device=gpu", ["device='gpu'", "cuda"]),
    ("seed=-1", ["seed=-1"]),
])
def test_bad_values_name_the_field_the_value_and_what_is_allowed(item, words):
    with pytest.raises(ValueError) as err:
        _set(item)
    for word in words:
        assert word in str(err.value)


def test_set_parses_numbers_tuples_and_none_by_type():
    cfg = _set("forward_cloning.iterations=1e6", "backprop_cloning.update_part_weights=(4.0,1.0)",
               "network.output_bound=none", "meta_learning.adam_lrs=0.1,0.3", "network.meta_test_state_clip=4",
               "backprop_cloning.init_forward_clone=''")
    assert cfg.forward_cloning.iterations == 1_000_000 and isinstance(cfg.forward_cloning.iterations, int)
    assert cfg.backprop_cloning.update_part_weights == (4.0, 1.0)
    assert cfg.network.output_bound is None
    assert cfg.meta_learning.adam_lrs == (0.1, 0.3)
    assert cfg.network.meta_test_state_clip == 4.0 and isinstance(cfg.network.meta_test_state_clip, float)
    assert cfg.backprop_cloning.init_forward_clone == ""


def test_python_api_checks_the_same_way():
    with pytest.raises(ValueError, match="network.hidden_size=0"):
        vl.NetworkConfig(hidden_size=0)
    assert vl.NetworkConfig(position_inputs="false").position_inputs is False
    with pytest.raises(ValueError, match="eq4.trials"):
        vl.get_config("smoke").override({"eq4.trials": True})  # a bool is not a count


def test_every_preset_and_shipped_record_passes_the_checks():
    for name in vl.PRESETS:
        vl.get_config(name)
    for record in artifacts.PRETRAINED_DIR.glob("*.json"):
        meta = json.loads(record.read_text())
        vl.Config.from_dict(meta["config"])


def test_script_errors_are_one_line_not_a_traceback(monkeypatch):
    args = _cli.artifact_parser("x", "meta_learning", "").parse_args(
        ["--preset", "smoke", "--set", "meta_learning.iterations=-3", "--allow-dirty"])
    with pytest.raises(SystemExit, match="error: config meta_learning.iterations=-3"):
        _cli.config_and_out(args, "meta_learning")


@pytest.mark.parametrize("script", ["finetune_backprop_clone.py", "sgd_reference.py"])
def test_probe_scripts_refuse_zero_steps_in_one_line(script):
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "scripts" / script), "--steps", "0"],
                         capture_output=True, text=True, cwd=root)
    assert out.returncode == 2
    assert "argument --steps: must be at least 1, got 0" in out.stderr and "Traceback" not in out.stderr


def test_probe_argument_types_name_the_problem():
    assert _cli.positive_int("3") == 3 and _cli.positive_float("0.08") == 0.08
    for parse, text, message in ((_cli.positive_int, "0", "must be at least 1, got 0"),
                                 (_cli.positive_int, "2.5", "expected a whole number, got '2.5'"),
                                 (_cli.positive_float, "-0.1", "must be positive, got -0.1"),
                                 (_cli.positive_float, "nan", "must be positive, got nan"),
                                 (_cli.positive_float, "fast", "expected a number, got 'fast'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(text)
    assert _cli.seed_std(torch.tensor([0.8])) == 0.0  # one seed: no spread, not nan
    assert _cli.seed_std(torch.tensor([0.8, 0.9])) == pytest.approx(torch.tensor([0.8, 0.9]).std().item())


# --- state_clip and tensor shapes ----------------------------------------------------------


def _layer(n=2, A=3, B=4, H=16, M=8):
    g = torch.Generator().manual_seed(0)
    lstm = network.SubLSTM(H, M, generator=g)
    layer = network.LayerState(torch.randn(n, A, B, H, generator=g), torch.randn(n, A, B, H, generator=g),
                               torch.randn(n, A, M, generator=g), torch.randn(n, B, M, generator=g))
    return lstm, layer


def _meta_rnn_step(clip):
    rnn = ml_learners.MetaRNN(4, 8)
    return rnn.step(rnn.initial_state(1), torch.zeros(1, 4), torch.zeros(1, 10), state_clip=clip)


@pytest.mark.parametrize("clip", [0.0, -1.0, float("nan"), float("inf")])
def test_state_clip_means_one_thing_on_every_path(clip):
    lstm, layer = _layer()
    for run in (lambda: network.dense_ticks(lstm, layer, 2, state_clip=clip, fused=True),
                lambda: network.dense_ticks(lstm, layer, 2, state_clip=clip, fused=False),
                lambda: network.dense_ticks_reference(lstm, layer, 2, state_clip=clip),
                lambda: network.VSMLNetwork([3, 4], hidden_size=16, state_clip=clip),
                lambda: _meta_rnn_step(clip)):
        with pytest.raises(ValueError, match="state_clip must be a finite number > 0"):
            run()


@pytest.mark.parametrize("field, bad", [("h", (2, 3, 4, 8)), ("c", (2, 3, 5, 16)),
                                        ("fwd_in", (2, 2, 8)), ("bwd_in", (2, 4, 7)), ("fwd_in", (1, 3, 8))])
def test_inconsistent_layer_shapes_are_refused_before_any_kernel(field, bad):
    lstm, layer = _layer()
    setattr(layer, field, torch.zeros(bad))
    for use_fused in (True, False):
        with pytest.raises(ValueError, match=f"layer.{field} must have shape"):
            network.dense_ticks(lstm, layer, 2, fused=use_fused)
    with pytest.raises(ValueError, match=f"layer.{field} must have shape"):
        network.dense_ticks_reference(lstm, layer, 2)


def test_fused_dense_ticks_refuses_inconsistent_shapes_and_dtypes():
    n, A, B, H = 2, 3, 4, 16
    ok = dict(from_a=torch.zeros(n, A, 4 * H), from_b=torch.zeros(n, B, 4 * H), w_hid=torch.zeros(H, 4 * H),
              h=torch.zeros(n, A, B, H), c=torch.zeros(n, A, B, H))
    for name, bad in [("from_a", torch.zeros(n, A + 5, 4 * H)), ("from_b", torch.zeros(n, 1, 4 * H)),
                      ("w_hid", torch.zeros(8, 4 * H)), ("c", torch.zeros(n, A, B - 1, H)),
                      ("from_a", torch.zeros(n, A, 4 * H, dtype=torch.float64))]:
        with pytest.raises(ValueError, match=name):
            fused.dense_ticks(**{**ok, name: bad}, micro_ticks=2)
    with pytest.raises(ValueError, match="micro_ticks"):
        fused.dense_ticks(**ok, micro_ticks=-1)


def test_the_compiled_kernel_itself_refuses_bad_shapes():
    """Called past the Python checks, the C++ code raises instead of reading out of bounds."""
    if not fused.available():
        pytest.skip(f"fused kernel unavailable ({fused._failed})")
    n, A, B, H = 2, 3, 4, 16
    h = torch.zeros(n, A, B, H)
    with pytest.raises(RuntimeError, match="from_a must be"):
        fused._module.forward_ticks(torch.zeros(n, A + 9, 4 * H), torch.zeros(n, B, 4 * H), torch.zeros(H, 4 * H),
                                    h, h, 2, 0.0, False)
    with pytest.raises(RuntimeError, match="w_hid must be"):
        fused._module.forward_ticks(torch.zeros(n, A, 4 * H), torch.zeros(n, B, 4 * H), torch.zeros(1, 4 * H),
                                    h, h, 2, 0.0, False)


# --- data ----------------------------------------------------------------------------------


@pytest.fixture
def mnist_copy(data_root, tmp_path):
    """A data folder holding a copy of MNIST's test split, to damage."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.SPLIT_FILES[False]:
        shutil.copy(data_root / "MNIST" / "raw" / name, raw / name)
    return tmp_path


def _load(root):
    return vl.load_dataset("mnist", train=False, root=root, download=False)


def test_intact_copy_loads(mnist_copy):
    assert len(_load(mnist_copy)) == 10_000


def test_randomised_pixels_fail_the_checksum(mnist_copy):
    path = mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(16, len(raw), (len(raw) // 10,), generator=g)
    for i, v in zip(idx.tolist(), torch.randint(256, (len(idx),), generator=g).tolist()):
        raw[i] = v
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DatasetCorruptError, match="t10k-images-idx3-ubyte: its SHA-256"):
        _load(mnist_copy)


def test_a_label_out_of_range_is_named(mnist_copy, monkeypatch):
    path = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[8 + 123] = 200
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DatasetCorruptError, match="SHA-256"):
        _load(mnist_copy)
    monkeypatch.setattr(data, "PUBLISHED_SHA256", {})  # a file no checksum covers
    with pytest.raises(data.DatasetCorruptError, match="label 200 at index 123"):
        _load(mnist_copy)


@pytest.mark.parametrize("cut", [1, 5000, "all"])
def test_truncated_or_empty_files_say_so(mnist_copy, cut):
    path = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = path.read_bytes()
    path.write_bytes(b"" if cut == "all" else raw[:-cut])  # cut == 1: one label missing
    with pytest.raises(data.DatasetCorruptError, match="truncated"):
        _load(mnist_copy)


def test_a_file_that_is_not_idx_says_so(mnist_copy):
    path = mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(b"<html>404 not found</html>" * 10)
    with pytest.raises(data.DatasetCorruptError, match="not an idx file"):
        _load(mnist_copy)


def test_sha256sums_beside_the_data_are_checked(mnist_copy):
    (mnist_copy / "SHA256SUMS").write_text("0" * 64 + "  MNIST/raw/t10k-labels-idx1-ubyte\n")
    with pytest.raises(data.DatasetCorruptError, match="SHA256SUMS"):
        _load(mnist_copy)


def test_a_missing_dataset_stops_a_run_before_it_trains(data_root, tmp_path, monkeypatch):
    """Chapter 5's run needs Fashion-MNIST only to meta-test; it must not meta-train first."""
    from vsml_lite.metalearn import experiment

    (tmp_path / "MNIST").symlink_to(data_root / "MNIST")  # MNIST only

    def never(*a, **k):
        raise AssertionError("meta-training started although Fashion-MNIST is missing")

    monkeypatch.setattr(experiment, "meta_train", never)
    monkeypatch.setattr(experiment, "load_split", never)
    cfg = vl.get_config("smoke").override({"data.root": str(tmp_path), "data.download": False})
    with pytest.raises(vl.DatasetNotFoundError, match="FashionMNIST not found"):
        experiment.train_and_save(cfg, tmp_path / "out", progress=False)


# --- artifacts ---------------------------------------------------------------------------


@pytest.fixture
def shipped_copy(tmp_path):
    """Copies of two shipped artifacts of different kinds."""
    for name in ("forward_cloning_cpu", "improve_backprop_cpu"):
        for suffix in (".pt", ".json"):
            shutil.copy(artifacts.PRETRAINED_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


def test_shipped_artifacts_record_their_weights_checksum():
    for record in artifacts.PRETRAINED_DIR.glob("*.json"):
        meta = json.loads(record.read_text())
        assert "weights_sha256" in meta, f"{record.name} lacks weights_sha256"
        vl.load_artifact(record.with_suffix(""), kind=meta["kind"])


def test_every_chapter_names_one_shipped_artifact_that_loads():
    from vsml_lite import backprop as bp, cloning, improve, metalearn as ml

    assert set(artifacts.SHIPPED) == {cloning.KIND, bp.KIND, ml.KIND, improve.KIND}
    for kind in artifacts.SHIPPED:
        assert vl.artifact_exists(vl.shipped_path(kind)), kind
        vl.load_artifact(vl.shipped_path(kind), kind=kind)
    with pytest.raises(ValueError, match="no shipped artifact of kind 'cma'"):
        vl.shipped_path("cma")


def test_a_pt_without_its_record_is_not_an_artifact(shipped_copy):
    """``save_artifact`` writes the record last: a .pt alone is an unfinished write."""
    assert vl.artifact_exists(shipped_copy / "forward_cloning_cpu")
    (shipped_copy / "forward_cloning_cpu.json").unlink()
    assert not vl.artifact_exists(shipped_copy / "forward_cloning_cpu")


def test_flipped_bytes_in_a_pt_are_refused(shipped_copy):
    pt = shipped_copy / "forward_cloning_cpu.pt"
    raw = bytearray(pt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pt.write_bytes(bytes(raw))
    with pytest.raises(artifacts.ArtifactError, match="not the file forward_cloning_cpu.json records.*"
                                                      "train_forward_cloning.py"):
        vl.load_artifact(shipped_copy / "forward_cloning_cpu")


def test_a_pt_from_another_chapter_is_refused(shipped_copy):
    shutil.copy(shipped_copy / "improve_backprop_cpu.pt", shipped_copy / "forward_cloning_cpu.pt")
    with pytest.raises(artifacts.ArtifactError, match="SHA-256 differs"):
        vl.load_artifact(shipped_copy / "forward_cloning_cpu")


def test_an_artifact_of_the_wrong_kind_is_refused(shipped_copy):
    record = vl.load_artifact(shipped_copy / "improve_backprop_cpu")
    with pytest.raises(artifacts.ArtifactError, match="expected a 'forward_cloning' artifact, got a 'improve_backprop'"):
        vl.cloning.load_forward_clone(record)
    with pytest.raises(artifacts.ArtifactError, match="expected a 'forward_cloning'"):
        vl.load_artifact(shipped_copy / "improve_backprop_cpu", kind="forward_cloning")


def test_a_pt_newer_than_its_json_is_refused(shipped_copy, tmp_path):
    """A retrain that wrote the new .pt but died before the .json."""
    lstm = vl.SubLSTM(32, 8)
    path = artifacts.save_artifact(tmp_path / "new" / "forward_cloning_cpu", {"lstm": lstm.state_dict()},
                                   {**vl.load_artifact(shipped_copy / "forward_cloning_cpu").meta})
    shutil.copy(path.with_suffix(".pt"), shipped_copy / "forward_cloning_cpu.pt")
    with pytest.raises(artifacts.ArtifactError, match="one of the pair was replaced"):
        vl.load_artifact(shipped_copy / "forward_cloning_cpu")
    assert vl.load_artifact(path).meta["weights_sha256"] != vl.load_artifact(
        artifacts.PRETRAINED_DIR / "forward_cloning_cpu").meta["weights_sha256"]


def test_scripts_write_to_the_live_folder_unless_told(monkeypatch, tmp_path):
    """``train_meta_learning.py --preset cpu --set ...`` must not overwrite the shipped artifact."""
    monkeypatch.setenv(artifacts.LIVE_ENV_VAR, str(tmp_path))
    parser = _cli.artifact_parser("x", "meta_learning", "")
    args = parser.parse_args(["--preset", "cpu", "--set", "meta_learning.iterations=500", "--allow-dirty"])
    _, out = _cli.config_and_out(args, "meta_learning")
    assert out == tmp_path / "meta_learning_cpu"
    args = parser.parse_args(["--preset", "cpu", "--out", str(tmp_path / "x"), "--allow-dirty"])
    assert _cli.config_and_out(args, "meta_learning")[1] == tmp_path / "x"


def test_artifacts_are_refused_from_a_dirty_tree_without_the_flag(monkeypatch):
    monkeypatch.setattr(artifacts, "_CODE_VERSION_AT_IMPORT", "0.1.0+git.abc-dirty")
    parser = _cli.artifact_parser("x", "meta_learning", "")
    with pytest.raises(SystemExit, match="uncommitted tree.*--allow-dirty"):
        _cli.config_and_out(parser.parse_args(["--preset", "smoke"]), "meta_learning")
    _cli.config_and_out(parser.parse_args(["--preset", "smoke", "--allow-dirty"]), "meta_learning")
    monkeypatch.setattr(artifacts, "_CODE_VERSION_AT_IMPORT", "0.1.0+git.abc")
    _cli.config_and_out(parser.parse_args(["--preset", "smoke"]), "meta_learning")


def test_code_version_ignores_a_git_repository_that_does_not_track_the_package(tmp_path):
    """A pip install into a venv inside some other repository records the package version."""
    repo = tmp_path / "other"
    repo.mkdir()
    git = ["git", "-c", "user.email=x@y", "-c", "user.name=x"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    (repo / "README").write_text("another project\n")
    subprocess.run(git + ["add", "README"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "x"], cwd=repo, check=True)
    site = repo / "venv" / "site-packages"
    shutil.copytree(ROOT / "vsml_lite", site / "vsml_lite", ignore=shutil.ignore_patterns("pretrained", "__pycache__"))
    out = subprocess.run([sys.executable, "-c", "import vsml_lite as vl; print(vl.artifacts.code_version())"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == vl.__version__


# --- the kernel cache ----------------------------------------------------------------------


@pytest.mark.parametrize("value, off", [("0", True), ("false", True), ("False", True), ("no", True),
                                        ("off", True), ("1", False), ("", False)])
def test_vsml_fused_accepts_the_usual_words(monkeypatch, value, off):
    monkeypatch.setenv(fused.FUSED_ENV_VAR, value)
    assert fused.disabled() is off


def test_kernel_cache_is_keyed_by_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    here = fused._build_directory()
    monkeypatch.setattr(fused, "_cpu_features", lambda: "flags : sse2")
    assert fused._build_directory() != here


def test_a_damaged_cached_kernel_is_rebuilt_not_a_crash(tmp_path):
    """A truncated library used to kill the process with SIGBUS when loaded."""
    if not fused.available():
        pytest.skip(f"fused kernel unavailable ({fused._failed})")
    build = Path(fused._build_directory())
    copy = tmp_path / "ext" / build.name
    shutil.copytree(build, copy, ignore=shutil.ignore_patterns("lock"))
    library = copy / f"{fused._NAME}.so"
    raw = library.read_bytes()
    library.write_bytes(raw[: len(raw) // 3])
    code = ("import warnings, vsml_lite.fused as f\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    print(f.available(), any('damaged' in str(x.message) for x in w))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TORCH_EXTENSIONS_DIR": str(copy.parent)},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True"]
    assert vl.validate.file_sha256(library) == (copy / f"{fused._NAME}.so.sha256").read_text()


def test_a_garbage_or_unrecorded_cached_kernel_is_dropped(tmp_path):
    """Garbage that fails to load would otherwise mean the eager path for good."""
    library = tmp_path / "k.so"
    library.write_bytes(b"garbage")
    (tmp_path / "k.so.sha256").write_text("0" * 64)
    with pytest.warns(UserWarning, match="damaged"):
        fused._drop_damaged_library(str(library))
    assert not library.exists() and not (tmp_path / "k.so.sha256").exists()
    library.write_bytes(b"built by an older version, no record")
    fused._drop_damaged_library(str(library))
    assert not library.exists()
    library.write_bytes(b"intact")
    (tmp_path / "k.so.sha256").write_text(vl.validate.file_sha256(library))
    fused._drop_damaged_library(str(library))
    assert library.exists()


def test_loading_the_kernel_holds_the_build_lock(tmp_path, monkeypatch):
    """A process that checks the cached library while another rebuilds it took the half-linked
    library for a damaged one and deleted it under the other's load; checking, building and
    recording now happen under one lock on the build directory."""
    fcntl = pytest.importorskip("fcntl")
    import torch.utils.cpp_extension as ext

    monkeypatch.setattr(fused, "_module", None)
    monkeypatch.setattr(fused, "_failed", None)
    monkeypatch.setattr(fused, "_build_directory", lambda: str(tmp_path))
    monkeypatch.delenv(fused.FUSED_ENV_VAR, raising=False)
    held = []

    def load_inline(**kwargs):  # what another process would find while this one builds
        with open(tmp_path / fused._LOCK_NAME, "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return object()

    monkeypatch.setattr(ext, "load_inline", load_inline)
    assert fused.available()
    assert held == [True]


def _sgd_reference(*args):
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, str(root / "scripts" / "sgd_reference.py"), "--datasets", "mnist",
                           "--archs", "shallow", "--lrs", "0.08", "--seeds", "2", "--steps", "3", *args],
                          capture_output=True, text=True, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _sgd_reference_cell(cfg, test_images: int) -> str:
    """The table cell ``_sgd_reference`` should print for ``cfg``: its own SGD, computed here."""
    from vsml_lite import backprop as bp
    cfg = cfg.override({"backprop_cloning.test_steps": 3, "backprop_cloning.final_eval_examples": test_images})
    acc = 100 * bp.sgd_accuracy(cfg, bp.load_split(cfg, "mnist", True), bp.load_split(cfg, "mnist", False),
                                bp.arrangement(cfg, "shallow"), [0, 1], 0.08)
    return f"{acc.mean():.1f} ± {_cli.seed_std(acc):.1f}"


def test_sgd_reference_measures_on_the_test_images_asked_for(data_root):
    from vsml_lite import backprop as bp
    out = _sgd_reference("--test-images", "300")
    assert out.returncode == 0, out.stderr
    assert "test accuracy on 300 test examples" in out.stdout
    cfg, _ = bp.load_backprop_clone(vl.load_artifact(vl.shipped_path(bp.KIND)))
    assert _sgd_reference_cell(cfg, 300) in out.stdout.splitlines()[-1]


def test_sgd_reference_refuses_more_test_images_than_the_split_has(data_root):
    out = _sgd_reference("--test-images", "20000")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: --test-images 20,000 is more than the 10,000 images of the mnist test split" in out.stderr


def test_sgd_reference_takes_the_network_data_and_rate_of_a_preset(data_root):
    """``--preset`` measures the ceiling of a clone that does not exist yet (the paper
    campaign's): the preset's input side and cloned rate, not the shipped artifact's."""
    from vsml_lite import backprop as bp
    out = _sgd_reference("--preset", "smoke", "--test-images", "200")
    assert out.returncode == 0, out.stderr
    cfg = vl.get_config("smoke")
    side = cfg.backprop_cloning.input_side
    assert f"SGD on the network of the smoke preset: {side}x{side} inputs" in out.stdout
    assert f"the cloned rate is {bp.learning_rate(cfg):g}" in out.stdout
    assert _sgd_reference_cell(cfg, 200) in out.stdout.splitlines()[-1]
    both = _sgd_reference("--preset", "smoke", "--artifact", "x")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
