"""Image modality: 2-D stimuli, glimpse = a patch x patch crop at gaze (y, x)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..gaze import GazeSpace
from ..registry import MODALITIES
from ..retina import check_retina, foveate, retina_channels
from .base import Modality, RawStimuli, gather_patches, grid_positions


@dataclass
class ImageOptions:
    patch: int = 16  #: glimpse side in pixels
    stride: int = 0  #: grid step in pixels (0 = even spacing about patch/2 apart covering the image)
    color: str = "auto"  #: "gray", "rgb" or "auto" (keep what the source has)
    size: int = 0  #: resize (shorter side) and centre-crop every image to size x size (0 = keep)
    random_crop: int = 0  #: each training presentation shows a random crop x crop window (0 = the whole image;
    #: at most the stimuli's shorter side)
    flip: bool = False  #: each training presentation is mirrored left-right with probability 1/2
    retina: str = "none"  #: foveated glimpses: "none" (the plain patch), "multires" or "logpolar" (saccade_sim.retina)
    retina_levels: int = 3  #: multires: concentric patches of sides patch * retina_scale^i (logpolar: its field)
    retina_scale: int = 2  #: side ratio of consecutive multires patches

    def validate(self, path: str) -> None:
        check_retina(self, path)
        if self.patch <= 0:
            raise ConfigError(f"{path}.patch: must be > 0, got {self.patch}")
        for key in ("stride", "random_crop"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{path}.{key}: must be >= 0, got {getattr(self, key)}")
        if self.size < 0:
            raise ConfigError(f"{path}.size: must be >= 0 (0 = keep), got {self.size}")
        if self.color not in ("gray", "rgb", "auto"):
            raise ConfigError(f"{path}.color: unknown value {self.color!r}; valid choices: gray, rgb, auto")


def to_float_image(img: np.ndarray) -> np.ndarray:
    """uint8/float [H, W] or [H, W, C] -> float32 [C, H, W] in [0, 1] (alpha dropped)."""
    a = np.asarray(img)
    scale = 255.0 if a.dtype == np.uint8 else (a.max() if a.max() > 1.0 else 1.0)
    a = a.astype(np.float32) / np.float32(scale)
    if a.ndim == 2:
        a = a[None]
    else:
        a = np.moveaxis(a[..., :3], -1, 0)
    return a


def set_color(x: torch.Tensor, color: str) -> torch.Tensor:
    """[N, C, H, W]: 'gray' = ITU-R 601 luma of RGB, 'rgb' = grey repeated to 3 channels."""
    if color == "gray" and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    if color == "rgb" and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    return x


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size`` (bilinear, PIL) and centre-crop to size x size."""
    from PIL import Image

    pil = Image.fromarray(img)
    w, h = pil.size
    s = size / min(w, h)
    pil = pil.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = pil.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(pil.crop((left, top, left + size, top + size)))


@MODALITIES.register("image")
class ImageModality(Modality):
    """2-D images (grey or colour); a glimpse is a square patch at gaze (y, x) on a grid or anywhere.

    With ``random_crop`` / ``flip`` a training presentation shows a random crop (and a mirror image) of the
    stimulus, sampled once per presentation (torchvision's RandomCrop + RandomHorizontalFlip); gazes are in
    the crop's frame, and evaluation (the probe) sees the centre crop, unflipped."""

    Options = ImageOptions
    extensions = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
    name = "image"

    @classmethod
    def load_file(cls, path: Path, options: ImageOptions) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im = im.convert("L" if im.mode in ("1", "L", "LA", "I", "I;16") else "RGB")
                a = np.asarray(im)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot decode image ({exc})") from None
        if a.size == 0:
            raise DataError(f"{path}: empty image")
        return resize_square(a, options.size) if options.size else a

    @classmethod
    def to_raw(cls, item) -> np.ndarray:
        """A torch image tensor [C, H, W] (torchvision's layout, e.g. after ``ToTensor``) becomes [H, W, C];
        arrays [H, W] / [H, W, C] and PIL images are taken as they are."""
        if isinstance(item, torch.Tensor) and item.dim() == 3 and item.shape[0] in (1, 3, 4):
            item = item.permute(1, 2, 0)
        a = super().to_raw(item)
        return a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a

    @classmethod
    def unlabelled(cls, items, names, cfg, options, rng):
        """Unlabelled photographs: crops labelled by photo (:func:`saccade_sim.datasets.photo_crops`)."""
        from ..datasets import photo_crops

        return photo_crops(items, names, cfg, rng)

    @classmethod
    def check_array(cls, x: np.ndarray, where: str) -> None:
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
            raise DataError(f"{where}: expected images [N,H,W] or [N,H,W,C] with C in 1/3/4, got shape {x.shape}")
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where}: expected uint8 or float images, got dtype {x.dtype}")

    @classmethod
    def prepare(cls, raw: RawStimuli, options: ImageOptions) -> torch.Tensor:
        items = raw.x
        if isinstance(items, np.ndarray):
            if options.size:
                items = [resize_square(a, options.size) for a in items]
            else:
                a = torch.from_numpy(np.ascontiguousarray(items))
                a = a.float() / 255.0 if a.dtype == torch.uint8 else a.float()
                a = a[:, None] if a.ndim == 3 else a[..., :3].permute(0, 3, 1, 2)
                return set_color(a, options.color).contiguous()
        arrays = [to_float_image(a) for a in items]
        channels = max(a.shape[0] for a in arrays)
        arrays = [np.repeat(a, channels, 0) if a.shape[0] != channels else a for a in arrays]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise DataError(f"images differ in size ({sorted(shapes)[:3]} ...); set glimpse.size to resize them")
        return set_color(torch.from_numpy(np.stack(arrays)), options.color).contiguous()

    def __init__(self, options: ImageOptions, stimulus_shape: tuple[int, ...]) -> None:
        super().__init__(options, stimulus_shape)
        c, h, w = stimulus_shape
        crop = min(options.random_crop, h, w)
        if crop < options.random_crop:
            warnings.warn(f"glimpse.random_crop: {options.random_crop} is larger than the stimuli ({h}x{w} pixels); "
                          f"the crops are {crop}x{crop}", stacklevel=2)
        self.frame_size = (crop, crop) if crop else (h, w)
        fh, fw = self.frame_size
        p = options.patch
        if p > fh or p > fw:
            raise ConfigError(f"glimpse.patch: {p} is larger than the stimuli ({fh}x{fw} pixels"
                              f"{', glimpse.random_crop' if options.random_crop else ''})")
        ys, xs = grid_positions(fh, p, options.stride), grid_positions(fw, p, options.stride)
        # raster order as in CLAPP: time runs down each column (x outer, y inner)
        grid = torch.tensor([(y, x) for x in xs for y in ys], dtype=torch.long)
        self._space = GazeSpace(grid, torch.tensor([fh - p, fw - p]))

    @property
    def space(self) -> GazeSpace:
        return self._space

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        return (self.stimulus_shape[0] * retina_channels(self.options), self.options.patch, self.options.patch)

    @property
    def view_size(self) -> int:
        return 3 if self.options.random_crop or self.options.flip else 0

    def sample_view(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, 3] long: the crop's top-left (y, x) in the stimulus and the flip (0 / 1)."""
        (_, h, w), (fh, fw) = self.stimulus_shape, self.frame_size
        oy = torch.randint(h - fh + 1, (n,), generator=generator)
        ox = torch.randint(w - fw + 1, (n,), generator=generator)
        flip = (torch.rand(n, generator=generator) < 0.5).long() if self.options.flip else torch.zeros(n, dtype=torch.long)
        return torch.stack([oy, ox, flip], 1)

    def frame(self, images: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] as presentations ``view`` [B, 3] show them: the crop [B, C, fh, fw], mirrored where
        the view flips (the frame that gazes refer to)."""
        crops = gather_patches(images, torch.arange(len(images), device=images.device), view[:, :2], self.frame_size)
        return torch.where(view[:, 2].bool().view(-1, 1, 1, 1), crops.flip(-1), crops)

    def cut(self, store: torch.Tensor, idx: torch.Tensor, gaze: torch.Tensor,
            view: torch.Tensor | None = None) -> torch.Tensor:
        """``store`` [N, C, H, W], ``idx`` [B], ``gaze`` [B, 2] top-left (y, x) in the view's frame -> [B, C, p, p]
        in one gather. The patch at x of a flipped crop is the mirrored patch at ``crop - x - p`` of the crop."""
        p = self.options.patch
        if self.view_size and view is None:  # evaluation: the centre crop, unflipped
            (_, h, w), (fh, fw) = self.stimulus_shape, self.frame_size
            view = torch.tensor([[(h - fh) // 2, (w - fw) // 2, 0]], device=gaze.device).expand(len(gaze), -1)
        if self.options.retina != "none":  # foveated, at real-valued gazes in the view's frame
            images = store[idx]
            return foveate(images if view is None else self.frame(images, view), gaze, self.options)
        if not self.view_size:
            return gather_patches(store, idx, gaze, (p, p))
        fw = self.frame_size[1]
        flip = view[:, 2].bool()
        x = torch.where(flip, fw - p - gaze[:, 1], gaze[:, 1])
        patches = gather_patches(store, idx, torch.stack([gaze[:, 0] + view[:, 0], x + view[:, 1]], 1), (p, p))
        return torch.where(flip.view(-1, 1, 1, 1), patches.flip(-1), patches)
