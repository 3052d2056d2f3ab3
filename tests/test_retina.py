"""Foveated glimpses (saccade_sim.retina) against independent computations."""
import math

import pytest
import torch

from saccade_sim.config import resolve
from saccade_sim.errors import ConfigError
from saccade_sim.modalities.image import ImageModality, ImageOptions
from saccade_sim.modalities.video import VideoModality, VideoOptions
from saccade_sim.retina import logpolar, multires


@pytest.mark.parametrize("retina", ["multires", "logpolar"])
def test_the_foveated_glimpse_of_a_constant_image_or_clip_is_constant(retina):
    image = ImageModality(ImageOptions(patch=8, retina=retina), (3, 32, 32))
    store = torch.full((2, 3, 32, 32), 0.37)
    out = image.cut(store, torch.tensor([0, 1]), torch.tensor([[0.0, 0.0], [17.3, 24.0]]))
    assert out.shape == (2, 3 * (3 if retina == "multires" else 1), 8, 8)
    assert torch.allclose(out, torch.full_like(out, 0.37), atol=1e-6)
    video = VideoModality(VideoOptions(patch=8, frames=2, clip_frames=4, retina=retina), (1, 4, 32, 32))
    clip = video.cut(torch.full((1, 1, 4, 32, 32), -1.5), torch.tensor([0]), torch.tensor([[2, 10, 3]]))
    assert clip.shape[1] == video.glimpse_shape[0] and torch.allclose(clip, torch.full_like(clip, -1.5), atol=1e-6)


def test_the_centre_patch_of_a_multires_glimpse_is_the_plain_glimpse():
    store = torch.randn(4, 1, 32, 32)
    idx, gaze = torch.tensor([0, 1, 2, 3]), torch.tensor([[0, 0], [4, 20], [24, 24], [12, 8]])
    plain = ImageModality(ImageOptions(patch=8), (1, 32, 32))
    fovea = ImageModality(ImageOptions(patch=8, retina="multires"), (1, 32, 32))
    assert torch.allclose(fovea.cut(store, idx, gaze)[:, :1], plain.cut(store, idx, gaze), atol=1e-5)
    # through a presentation's view (a crop, a mirror image): the same frame as the plain glimpse
    crops = dict(patch=8, random_crop=24, flip=True)
    plain, fovea = (ImageModality(ImageOptions(**crops, retina=r), (1, 32, 32)) for r in ("none", "multires"))
    view = torch.tensor([[3, 5, 1], [0, 8, 0], [8, 0, 1], [2, 2, 0]])
    gaze = gaze.clamp_max(16)
    assert torch.allclose(fovea.cut(store, idx, gaze, view)[:, :1], plain.cut(store, idx, gaze, view), atol=1e-5)


def test_outer_levels_are_box_averages_of_the_larger_patches():
    img = torch.randn(1, 2, 48, 48)
    out = multires(img, torch.tensor([[20.0, 18.0]]), patch=4, levels=3, scale=2)  # centre (21.5, 19.5)
    for level in range(3):
        f = 2 ** level
        side = 4 * f
        top, left = int(21.5 - (side - 1) / 2), int(19.5 - (side - 1) / 2)
        box = img[0, :, top:top + side, left:left + side].reshape(2, 4, f, 4, f).mean((2, 4))
        assert torch.allclose(out[0, 2 * level:2 * level + 2], box, atol=1e-5)


def test_gazes_are_real_valued_and_the_log_polar_rings_grow_geometrically():
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    ramp = torch.stack([ys, xs])[None]  # channel 0 = y, channel 1 = x: bilinear sampling is exact on it
    out = multires(ramp, torch.tensor([[10.25, 20.5]]), patch=4, levels=1, scale=2)
    assert torch.allclose(out[0, 0, :, 0], 10.25 + torch.arange(4.0)) and torch.allclose(out[0, 1, 0], 20.5 + torch.arange(4.0))
    lp = logpolar(ramp, torch.tensor([[28.0, 28.0]]), patch=8, levels=3, scale=2)  # centre 31.5, outer radius 16
    i = torch.arange(8.0)
    radius = 0.5 * (16 / 0.5) ** (i / 7)
    angle = 2 * math.pi * i / 8
    assert torch.allclose(lp[0, 0], 31.5 + radius[:, None] * torch.sin(angle)[None], atol=1e-4)
    assert torch.allclose(lp[0, 1], 31.5 + radius[:, None] * torch.cos(angle)[None], atol=1e-4)


def test_retina_options_are_validated():
    with pytest.raises(ConfigError, match="glimpse.retina"):
        resolve({"glimpse": {"retina": "fovea"}})
    with pytest.raises(ConfigError, match="glimpse.retina_scale"):
        resolve({"glimpse": {"retina": "multires", "retina_scale": 1}})


@pytest.mark.parametrize("modality,source,glimpse", [
    ("image", "digits8x8.npz", {"patch": 4, "stride": 2, "retina": "multires"}),
    ("video", "moving_mnist.npz", {"patch": 16, "frames": 2, "clip_frames": 4, "retina": "logpolar"}),
])
def test_foveated_runs_from_config(modality, source, glimpse):
    from conftest import data_path
    from saccade_sim.experiment import Experiment

    exp = Experiment({"data": {"modality": modality, "source": str(data_path(source)), "train_limit": 40,
                               "test_limit": 20},
                      "glimpse": glimpse, "eye": {"batch": 4, "policy": "random"}, "rule": {"name": "oja"},
                      "network": {"layers": [{"channels": 4}]}, "run": {"events": 4, "progress": False},
                      "probe": {"train": 20, "test": 10}})
    results = exp.run()
    assert exp.layers[0].spec and exp.modality.glimpse_shape[0] == {"image": 3, "video": 2}[modality]
    assert 0.0 <= results["probe"]["layers"]["layer1"] <= 1.0
