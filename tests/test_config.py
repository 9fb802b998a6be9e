"""The one config mechanism: presets by name or environment variable, clear errors."""

import json

import pytest

import vsml_lite as vl


def test_presets_by_argument():
    for name in ("smoke", "cpu", "paper"):
        cfg = vl.get_config(name)
        assert cfg.preset == name
    assert vl.get_config("smoke").eq4.trials < vl.get_config("cpu").eq4.trials


def test_preset_from_environment(monkeypatch):
    monkeypatch.setenv(vl.PRESET_ENV_VAR, "smoke")
    assert vl.get_config().preset == "smoke"
    monkeypatch.delenv(vl.PRESET_ENV_VAR)
    assert vl.get_config().preset == vl.DEFAULT_PRESET


def test_unknown_preset_lists_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown preset 'fast'.*smoke, cpu, paper"):
        vl.get_config("fast")
    monkeypatch.setenv(vl.PRESET_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=r"'gpu' \(from \$VSML_PRESET\).*smoke, cpu, paper"):
        vl.get_config()


def test_overrides():
    cfg = vl.get_config("smoke", seed=3)
    assert cfg.seed == 3
    cfg2 = cfg.override({"eq4.trials": 2, "data.random_std": 1.0})
    assert (cfg2.eq4.trials, cfg2.data.random_std, cfg2.seed) == (2, 1.0, 3)
    assert cfg.eq4.trials != 2  # frozen: the original is unchanged
    with pytest.raises(ValueError, match=r"unknown config key 'eq4.trails'.*trials"):
        cfg.override({"eq4.trails": 1})
    with pytest.raises(ValueError, match=r"unknown config key 'sed'"):
        vl.get_config("smoke", sed=1)


def test_dict_round_trip_through_json():
    cfg = vl.get_config("paper", seed=11)
    again = vl.Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown config key 'eq4.bogus'"):
        vl.Config.from_dict({"eq4": {"bogus": 1}})


def test_table1_random_std():
    assert vl.get_config("paper").data.random_std == 2.0  # Table 1, "Random data std"
