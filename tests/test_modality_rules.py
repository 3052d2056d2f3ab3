"""Every rule runs unchanged on audio and video glimpses: the rule only ever sees [B, C, h, w] tensors."""
import numpy as np
import pytest
import torch

from saccade_sim.experiment import Experiment
from saccade_sim.registry import RULES

SOURCES = {
    "audio": ({"x": (np.random.default_rng(0).standard_normal((24, 4000)) * 3000).astype(np.int16)},
              {"duration": 0.5, "frames": 16}),
    "video": ({"x": np.random.default_rng(0).integers(0, 256, (24, 8, 20, 20), dtype=np.uint8)},
              {"clip_frames": 8, "frames": 4, "frame_stride": 2, "patch": 10, "stride": 10}),
}


@pytest.mark.parametrize("modality", list(SOURCES))
@pytest.mark.parametrize("rule", ["oja", "instar", "clapp"])
def test_rule_learns_on_modality(tmp_path, modality, rule):
    if rule not in RULES:
        pytest.skip(f"rule {rule!r} is not in this build")
    arrays, glimpse = SOURCES[modality]
    np.savez(tmp_path / "d.npz", y=np.arange(24) % 2, **arrays)
    exp = Experiment({"data": {"modality": modality, "source": str(tmp_path / "d.npz")}, "glimpse": glimpse,
                      "network": {"preset": "tiny"}, "rule": {"name": rule, **({"offsets": [1]} if rule == "clapp" else {})}, "eye": {"batch": 4, "jump_prob": 0.2},
                      "run": {"events": 12, "progress": False}, "probe": {"enabled": False}})
    before = [layer.weight.detach().clone() for layer in exp.layers]
    exp.run()
    for b, layer in zip(before, exp.layers):
        assert torch.isfinite(layer.weight).all() and not torch.equal(b, layer.weight)
