"""Network layers: a linear map (conv or dense), a non-linearity, and pooling of what is transmitted.

``a = W x`` is the membrane potential, ``y = rho(a)`` the post-synaptic output that rules see, and
``pool(y)`` is what the next layer receives.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.config import LayerSpec
from saccade_sim.errors import ConfigError
from saccade_sim.seeding import weight_seed

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "leaky_relu": lambda a: F.leaky_relu(a, 0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda a: a,
}

#: rho'(a) for each activation, used by rules that need the post-synaptic derivative (CLAPP)
DERIVATIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": lambda a: (a > 0).to(a.dtype),
    "leaky_relu": lambda a: torch.where(a > 0, 1.0, 0.01).to(a.dtype),
    "tanh": lambda a: 1 - torch.tanh(a) ** 2,
    "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "linear": torch.ones_like,
}


def _conv(c, k, p=None, pool=1, pool_kind="max"):
    return LayerSpec(kind="conv", channels=c, kernel=k, padding=-1 if p is None else p, pool=pool, pool_kind=pool_kind)


#: Named architectures for ``network.preset``.
PRESETS: dict[str, list[LayerSpec]] = {
    "small": [_conv(32, 3, pool=2), _conv(64, 3, pool=2)],
    "tiny": [_conv(16, 3, pool=2)],
    "dense": [LayerSpec(kind="dense", channels=256)],
    # CLAPP's VGG-6 encoder: 128 | 256+pool | 256 | 512+pool | 1024+pool | 1024+pool
    "vgg6": [_conv(128, 3), _conv(256, 3, pool=2), _conv(256, 3), _conv(512, 3, pool=2),
             _conv(1024, 3, pool=2), _conv(1024, 3, pool=2)],
}


class Layer(nn.Module):
    """One layer: ``a = conv(x)`` or ``a = W flatten(x)``; ``y = rho(a)``; transmitted ``pool(y)``."""

    def __init__(self, spec: LayerSpec, in_shape: tuple[int, ...], name: str, channels_last: bool = True) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ConfigError(f"network.{name}.activation: unknown value {spec.activation!r}; "
                              f"valid choices: {', '.join(ACTIVATIONS)}")
        self.spec = spec
        self.name = name
        self.in_shape = tuple(in_shape)
        self.is_conv = spec.kind == "conv"
        if self.is_conv:
            if len(in_shape) != 3:
                raise ConfigError(f"network.{name}: a conv layer needs [C, H, W] input, got {in_shape}")
            pad = spec.kernel // 2 if spec.padding < 0 else spec.padding
            self.op = nn.Conv2d(in_shape[0], spec.channels, spec.kernel, spec.stride, pad, bias=spec.bias)
            self.channels_last = channels_last
        else:
            n_in = int(torch.tensor(in_shape).prod())
            self.op = nn.Linear(n_in, spec.channels, bias=spec.bias)
            self.channels_last = False
        with torch.no_grad():
            try:
                a = self.op(torch.zeros(1, *in_shape).flatten(1) if not self.is_conv else torch.zeros(1, *in_shape))
            except RuntimeError as exc:
                raise ConfigError(f"network.{name}: does not fit its {list(in_shape)} input (kernel "
                                  f"{spec.kernel}, stride {spec.stride}, padding {spec.padding}): {exc}") from None
            if self.is_conv and (a.shape[-1] < spec.pool or a.shape[-2] < spec.pool):
                raise ConfigError(f"network.{name}.pool: {spec.pool} is larger than the layer's "
                                  f"{a.shape[-2]}x{a.shape[-1]} output")
            self.post_shape = tuple(a.shape[1:])
            self.out_shape = tuple(self.transmit(a).shape[1:])
        self.rho = ACTIVATIONS[spec.activation]
        self.rho_prime = DERIVATIVES[spec.activation]
        if self.channels_last:
            self.op.to(memory_format=torch.channels_last)

    @property
    def weight(self) -> torch.Tensor:
        return self.op.weight

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """a = W x (conv: at every position)."""
        if self.is_conv:
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.op(x)
        return self.op(x.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.potential(x)
        return a, self.rho(a)

    def transmit(self, y: torch.Tensor) -> torch.Tensor:
        """What the next layer receives: ``y`` pooled by ``spec.pool``."""
        if not self.is_conv or self.spec.pool == 1:
            return y
        pool = F.max_pool2d if self.spec.pool_kind == "max" else F.avg_pool2d
        return pool(y, self.spec.pool)


def build_layers(specs: list[LayerSpec], in_shape: tuple[int, ...], channels_last: bool = True,
                 seed: int | None = None) -> list[Layer]:
    """Chain layers, each one's input shape being the previous one's output shape. With ``seed``, layer i's
    initial weights come from its own stream ``weight_seed(seed, i)`` (the global RNG is left untouched)."""
    layers, shape = [], tuple(in_shape)
    for i, spec in enumerate(specs):
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(weight_seed(seed, i))
            layer = Layer(spec, shape, f"layers[{i}]", channels_last)
        layers.append(layer)
        shape = layer.out_shape
    return layers
