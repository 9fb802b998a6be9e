"""What the probes in this folder start from: the shipped backprop clone, or a V_M of its own."""
from typing import Optional

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp


def shipped_or(vm: Optional[str] = None):
    """The shipped clone's config (on the CPU) and its curriculum V_M, or, with ``vm``, the V_M
    state dict saved there (``finetune_backprop_clone.py --save``, or a campaign run's
    ``vm_cloned.pt``) under the same config. Returns ``(cfg, lstm)``."""
    cfg, clones = bp.load_backprop_clone(vl.load_artifact(vl.shipped_path(bp.KIND)))
    cfg = cfg.override({"device": "cpu"})
    lstm = clones["curriculum"].cpu()
    if vm:
        lstm = bp.new_clone_lstm(cfg)
        lstm.load_state_dict(torch.load(vm, map_location="cpu"))
    return cfg, lstm
