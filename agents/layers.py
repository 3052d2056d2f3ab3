"""Network layers: a linear map (conv or dense), a non-linearity, and pooling of what is transmitted.

``a = W x`` is the membrane potential, ``y = rho(a)`` the post-synaptic output that rules see, and
``pool(y)`` is what the next layer receives. Options of a layer (``LayerSpec``): ``kwta`` keeps only the k
largest ``a_j - theta_j`` per position in ``y`` (hard k-winners-take-all, thresholds ``theta`` in the buffer
``threshold`` that competitive rules adapt); ``prune`` removes a fixed random fraction of the connections
(buffer ``mask``; ``W`` is used as ``W * mask``); ``center`` = r > 0 makes the layer transmit
``pool(y) - mu`` with ``mu`` [C] a running mean of each channel of ``pool(y)`` (subtractive adaptation, as
feedforward inhibition would do): measured on training glimpses when the network is built (:func:`calibrate`)
and then ``mu <- (1 - r) mu + r mean_batch,positions pool(y)`` at every learning event. The next layer then
sees inputs of mean ~0 per channel: with ReLU outputs (all >= 0) its local updates ``d x`` would otherwise
all share the direction of the mean input.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.config import LayerSpec
from saccade_sim.errors import ConfigError
from saccade_sim.seeding import weight_seed

def relu_centered(a: torch.Tensor) -> torch.Tensor:
    """Miconi's dense output: y_j = relu(a_j - mean_k a_k), the mean over channels (dim 1) at each position."""
    return F.relu(a - a.mean(1, keepdim=True))


def norm_keeping(a: torch.Tensor) -> torch.Tensor:
    """Zhou's norm-keeping non-linearity: y = beta (|a| - mean_k |a_k|) over channels (dim 1) at each
    position, with beta = ||a|| / || |a| - mean|a| || so that ||y|| = ||a||."""
    c = a.abs() - a.abs().mean(1, keepdim=True)
    beta = a.norm(dim=1, keepdim=True) / c.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return beta * c


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "relu_centered": relu_centered,
    "norm_keeping": norm_keeping,
    "leaky_relu": lambda a: F.leaky_relu(a, 0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda a: a,
}

#: rho'(a) for each activation, used by rules that need the post-synaptic derivative (CLAPP); for the
#: channel-coupled ones the channel statistics (mean, beta) are treated as constants
DERIVATIVES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": lambda a: (a > 0).to(a.dtype),
    "relu_centered": lambda a: (a > a.mean(1, keepdim=True)).to(a.dtype),
    "norm_keeping": torch.sign,
    "leaky_relu": lambda a: torch.where(a > 0, 1.0, 0.01).to(a.dtype),
    "tanh": lambda a: 1 - torch.tanh(a) ** 2,
    "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "linear": torch.ones_like,
}


def _conv(c, k, p=None, pool=1, pool_kind="max", **extra):
    return LayerSpec(kind="conv", channels=c, kernel=k, padding=-1 if p is None else p, pool=pool,
                     pool_kind=pool_kind, **extra)


def miconi_net(dense_output: bool = False, prune: float = 0.0, k: int = 5) -> list[LayerSpec]:
    """Miconi (2021): conv 100 5x5 | 196 3x3 | 400 3x3, each + 2x2 average pooling. Without
    ``dense_output`` each layer transmits its k-WTA winners (``kwta = k``); with it, the dense
    relu(a - mean over channels) (plasticity still uses only the winners: rule competition "kwta").
    ``prune`` removes that fraction of the connections between layers (layers 2 and 3)."""
    out = dict(activation="relu_centered", kwta=0) if dense_output else dict(activation="relu", kwta=k)
    return [_conv(100, 5, pool=2, pool_kind="avg", **out),
            _conv(196, 3, pool=2, pool_kind="avg", prune=prune, **out),
            _conv(400, 3, pool=2, pool_kind="avg", prune=prune, **out)]


#: Named architectures for ``network.preset``.
PRESETS: dict[str, list[LayerSpec]] = {
    "small": [_conv(32, 3, pool=2, center=0.01), _conv(64, 3, pool=2)],
    "tiny": [_conv(16, 3, pool=2)],
    "dense": [LayerSpec(kind="dense", channels=256)],
    # CLAPP's VGG-6 encoder: 128 | 256+pool | 256 | 512+pool | 1024+pool | 1024+pool
    "vgg6": [_conv(128, 3), _conv(256, 3, pool=2), _conv(256, 3), _conv(512, 3, pool=2),
             _conv(1024, 3, pool=2), _conv(1024, 3, pool=2)],
    # Miconi's multi-layer Hebbian net, without and with the two interventions
    "miconi": miconi_net(),
    "miconi_dense": miconi_net(dense_output=True),
    "miconi_pruned": miconi_net(prune=0.99),
    "miconi_both": miconi_net(dense_output=True, prune=0.99),
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
            self.out_shape = tuple(self.pool(a).shape[1:])
        self.rho = ACTIVATIONS[spec.activation]
        self.rho_prime = DERIVATIVES[spec.activation]
        self.register_buffer("threshold", torch.zeros(spec.channels))
        self.register_buffer("transmit_mean", torch.zeros(spec.channels))
        if spec.kwta:
            from .rules.competition import kwta  # here, not at the top: agents.rules imports this module

            self._kwta = kwta
        if spec.prune > 0:
            keep = torch.rand(self.op.weight.shape) >= spec.prune
            self.register_buffer("mask", keep.to(self.op.weight.dtype))
            with torch.no_grad():
                self.op.weight.mul_(self.mask)
        else:
            self.mask = None
        if self.channels_last:
            self.op.to(memory_format=torch.channels_last)

    @property
    def weight(self) -> torch.Tensor:
        return self.op.weight

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory format this layer computes in (channels_last for conv layers that use it)."""
        return x.contiguous(memory_format=torch.channels_last) if self.is_conv and self.channels_last else x

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """a = (W * mask) x (conv: at every position)."""
        w = self.op.weight if self.mask is None else self.op.weight * self.mask
        if self.is_conv:
            return F.conv2d(self.as_input(x), w, self.op.bias, self.op.stride, self.op.padding)
        return F.linear(x.flatten(1), w, self.op.bias)

    def masked(self, delta: torch.Tensor) -> torch.Tensor:
        """A weight change restricted to the connections that exist (pruned ones stay 0)."""
        return delta if self.mask is None else delta * self.mask

    def output(self, a: torch.Tensor) -> torch.Tensor:
        """y = rho(a), then (``kwta`` > 0) only the k winners of a - theta per position."""
        y = self.rho(a)
        if self.spec.kwta:
            y = self._kwta(a, y, self.spec.kwta, self.threshold)
        return y

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a = W x and y = :meth:`output` (a)."""
        a = self.potential(x)
        return a, self.output(a)

    def pool(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` pooled by ``spec.pool`` (conv layers)."""
        if not self.is_conv or self.spec.pool == 1:
            return y
        return (F.max_pool2d if self.spec.pool_kind == "max" else F.avg_pool2d)(y, self.spec.pool)

    @torch.no_grad()
    def adapt(self, pooled: torch.Tensor) -> None:
        """``center``: move the running channel means towards those of ``pooled`` = pool(y) of this event."""
        if self.spec.center:
            self.transmit_mean.lerp_(channel_mean(pooled), self.spec.center)

    def centered(self, pooled: torch.Tensor) -> torch.Tensor:
        """``pooled`` minus the running channel means (``center``), else unchanged."""
        if not self.spec.center:
            return pooled
        return pooled - self.transmit_mean.view(-1, *[1] * (pooled.dim() - 2))

    def transmit(self, y: torch.Tensor) -> torch.Tensor:
        """What the next layer receives: ``pool(y)``, centred (``center``)."""
        return self.centered(self.pool(y))


def channel_mean(y: torch.Tensor) -> torch.Tensor:
    """[B, C, ...] -> [C]: the mean over the batch and the positions."""
    return y.transpose(0, 1).flatten(1).mean(1)


@torch.no_grad()
def calibrate(layers: list[Layer], x: torch.Tensor) -> None:
    """Set the transmitted channel means of the ``center`` layers to their values on the inputs ``x``
    (e.g. training glimpses), layer after layer, each seeing the previous one's centred output."""
    for layer in layers:
        pooled = layer.pool(layer(x)[1])
        if layer.spec.center:
            layer.transmit_mean.copy_(channel_mean(pooled))
        x = layer.centered(pooled)


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
