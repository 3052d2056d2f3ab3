"""Network layers: a linear map (conv or dense), a non-linearity, and pooling of what is transmitted.

``a = W x`` is the membrane potential, ``y = rho(a)`` the post-synaptic output that rules see, and
``pool(y)`` is what the next layer receives. Before the weights see it, the input may be normalised
(``input_norm``: "batch" = BatchNorm without affine, batch statistics while learning and running statistics
otherwise, as SoftHebb's blocks; "image" = each sample standardised over all its entries, as each layer of
Miconi's net; "unit" = each sample scaled to unit length, as Zhou's inputs) and reflect-padded
(``padding_mode``). ``batch_norm`` puts a BatchNorm with a learned affine map on ``a`` (SPHeRe's conv + BN).
Options of a layer (``LayerSpec``): ``kwta`` keeps only the k
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

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from saccade_sim.specs import LayerSpec
from saccade_sim.errors import ConfigError
from saccade_sim.seeding import weight_seed

from .rules.competition import kwta

def relu_centered(a: torch.Tensor) -> torch.Tensor:
    """Miconi's dense output: y_j = relu(a_j - mean_k a_k), the mean over channels (dim 1) at each position."""
    return F.relu(a - a.mean(1, keepdim=True))


def triangle(a: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Coates' triangle, as SoftHebb's blocks use it: y_j = relu(a_j - mean_k a_k) ** power (channels, dim 1)."""
    y = F.relu(a - a.mean(1, keepdim=True))
    return y if power == 1.0 else y ** power


def triangle_prime(a: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """d triangle / d a_j with the channel mean held constant: power relu(a_j - mean)^(power - 1) [a_j > mean]."""
    d = a - a.mean(1, keepdim=True)
    above = (d > 0).to(a.dtype)
    return above if power == 1.0 else power * F.relu(d) ** (power - 1) * above


def leaky_relu(a: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """y = a for a > 0, else negative_slope * a."""
    return F.leaky_relu(a, negative_slope)


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
    "leaky_relu": leaky_relu,
    "triangle": triangle,
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
    "leaky_relu": lambda a, negative_slope=0.01: torch.where(a > 0, 1.0, negative_slope).to(a.dtype),
    "triangle": triangle_prime,
    "tanh": lambda a: 1 - torch.tanh(a) ** 2,
    "sigmoid": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "linear": torch.ones_like,
}


#: running statistics of the batch norms move this far towards each learning event's (torch's default)
BN_MOMENTUM = 0.1

#: the LayerSpec field that parameterises an activation (passed to it and its derivative as that keyword)
ACTIVATION_PARAMETERS: dict[str, str] = {"triangle": "power", "leaky_relu": "negative_slope"}


def _conv(c, k, p=None, pool=1, pool_kind="max", **extra):
    return LayerSpec(kind="conv", channels=c, kernel=k, padding=-1 if p is None else p, pool=pool,
                     pool_kind=pool_kind, **extra)


def miconi_net(dense_output: bool = False, prune: float = 0.0, k: int = 1) -> list[LayerSpec]:
    """Miconi (2021) as HebbGrad_Github.ipynb builds it: conv 100 5x5 | 196 3x3 | 400 3x3, valid convolutions,
    each + 2x2 average pooling; each layer's input standardised per image; initial weights normal with unit
    norm per unit. Without ``dense_output`` each layer transmits its binary winners (1 where a unit is one of
    the k largest ``a - theta`` at its position and ``a - theta > 0``); with it, the dense
    ``relu((a - theta) - mean_c (a - theta))`` (the notebook's USETRIANGLE). Plasticity is the rule's (instar
    with ``competition = "kwta"``, ``kwta_post = "binary"``: the same winners, whatever is transmitted).
    ``prune`` removes that fraction of the connections of layers 2 and 3 (fixed random mask)."""
    out = dict(activation="relu_centered") if dense_output else dict(activation="linear", kwta=k, binarize=True)
    block = dict(p=0, pool=2, pool_kind="avg", input_norm="image", thresholded=True, init="normal_unit", **out)
    return [_conv(100, 5, **block), _conv(196, 3, prune=prune, **block), _conv(400, 3, prune=prune, **block)]


def softhebb_net(channels: tuple[int, int, int] = (96, 384, 1536)) -> list[LayerSpec]:
    """SoftHebb's CIFAR-10 network (demo.py, presets.json "4SoftHebbCnnCIFAR"): three blocks of BatchNorm
    without affine on the input, reflect padding, conv (5x5 | 3x3 | 3x3, no bias), triangle activation
    (power 0.7 | 1.4 | 1) and MaxPool(4, 2, 1) | MaxPool(4, 2, 1) | AvgPool(2, 2); initial weights
    N(0, 25^2 / fan_in) (norm ~25)."""
    block = dict(padding_mode="reflect", input_norm="batch", activation="triangle", init="normal", init_norm=25.0)
    overlapping = dict(pool=4, pool_stride=2, pool_padding=1)
    return [_conv(channels[0], 5, 2, power=0.7, **overlapping, **block),
            _conv(channels[1], 3, 1, power=1.4, **overlapping, **block),
            _conv(channels[2], 3, 1, power=1.0, pool=2, pool_kind="avg", **block)]


def sphere_net(channels: tuple[int, int, int] = (384, 768, 1536)) -> list[LayerSpec]:
    """SPHeRe's CIFAR-10 network (main.py, class CNN): three blocks of conv 3x3 (with bias) + BatchNorm +
    LeakyReLU(0.2) + MaxPool(4, 2, 1); the third block also transmits its input (zero-padded channels,
    2x2 average pooled: ``residual``)."""
    block = dict(bias=True, batch_norm=True, activation="leaky_relu", negative_slope=0.2, pool=4, pool_stride=2,
                 pool_padding=1)
    return [_conv(channels[0], 3, 1, **block), _conv(channels[1], 3, 1, **block),
            _conv(channels[2], 3, 1, residual=True, **block)]


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
    # the released SoftHebb and SPHeRe networks for 32x32 colour images
    "softhebb": softhebb_net(),
    "sphere": sphere_net(),
}


class Layer(nn.Module):
    """One layer: ``pre = prepare(x)`` (input normalisation, reflect padding), ``a = conv(pre)`` or
    ``a = W flatten(pre)`` (then ``batch_norm``); ``y = rho(a)`` (or ``rho(a - theta)``, ``thresholded``), k-WTA,
    binarised; transmitted ``pool(y)``. ``learning`` (the agent's flag) makes the batch norms use and update
    batch statistics; everything else (probes, analyses) uses the running ones."""

    def __init__(self, spec: LayerSpec, in_shape: tuple[int, ...], name: str, channels_last: bool = True,
                 sources: tuple[int, ...] = ()) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ConfigError(f"network.{name}.activation: unknown value {spec.activation!r}; "
                              f"valid choices: {', '.join(ACTIVATIONS)}")
        self.spec = spec
        self.name = name
        self.in_shape = tuple(in_shape)
        #: where the input comes from: indices into the network's representations [the glimpse, layer 1's output,
        #: ...], concatenated along channels (:meth:`gather`); () = the last one so far (a chain)
        self.sources = tuple(sources)
        self.is_conv = spec.kind == "conv"
        self.reflect = 0  #: reflect padding added by :meth:`prepare` (the convolution itself then pads nothing)
        self.momentum = BN_MOMENTUM  #: of the batch norms' running statistics
        if self.is_conv:
            if len(in_shape) != 3:
                raise ConfigError(f"network.{name}: a conv layer needs [C, H, W] input, got {in_shape}")
            pad = spec.kernel // 2 if spec.padding < 0 else spec.padding
            if spec.padding_mode == "reflect":
                self.reflect, pad = pad, 0
            self.op = nn.Conv2d(in_shape[0], spec.channels, spec.kernel, spec.stride, pad, bias=spec.bias)
            self.channels_last = channels_last
        else:
            n_in = int(torch.tensor(in_shape).prod())
            self.op = nn.Linear(n_in, spec.channels, bias=spec.bias)
            self.channels_last = False
        if spec.init != "default":
            with torch.no_grad():
                w = self.op.weight
                w.copy_(torch.randn(w.shape) * (spec.init_norm / math.sqrt(w[0].numel())))
        if spec.input_norm == "batch":
            n = in_shape[0] if self.is_conv else self.op.in_features
            self.register_buffer("input_mean", torch.zeros(n))
            self.register_buffer("input_var", torch.ones(n))
        if spec.batch_norm:
            self.register_buffer("bn_mean", torch.zeros(spec.channels))
            self.register_buffer("bn_var", torch.ones(spec.channels))
            self.bn_weight = nn.Parameter(torch.ones(spec.channels))
            self.bn_bias = nn.Parameter(torch.zeros(spec.channels))
        self.register_buffer("threshold", torch.zeros(spec.channels))
        self.register_buffer("transmit_mean", torch.zeros(spec.channels))
        if spec.prune > 0:
            keep = torch.rand(self.op.weight.shape) >= spec.prune
            self.register_buffer("mask", keep.to(self.op.weight.dtype))
            with torch.no_grad():
                self.op.weight.mul_(self.mask)
        else:
            self.mask = None
        if spec.init == "normal_unit":
            with torch.no_grad():
                w = self.op.weight
                w.mul_(spec.init_norm / torch.linalg.vector_norm(w.flatten(1), dim=1).clamp_min(1e-12).view(
                    -1, *[1] * (w.dim() - 1)))
        with torch.no_grad():
            try:
                zeros = torch.zeros(1, *in_shape)
                a = self.potential(self.prepare(zeros))
            except RuntimeError as exc:
                raise ConfigError(f"network.{name}: does not fit its {list(in_shape)} input (kernel "
                                  f"{spec.kernel}, stride {spec.stride}, padding {spec.padding}): {exc}") from None
            if self.is_conv and min(a.shape[-2:]) + 2 * spec.pool_padding < spec.pool:
                raise ConfigError(f"network.{name}.pool: {spec.pool} is larger than the layer's "
                                  f"{a.shape[-2]}x{a.shape[-1]} output")
            self.post_shape = tuple(a.shape[1:])
            self.out_shape = tuple(self.pool(a).shape[1:])
        if spec.residual:
            self._check_shortcut()
        param = ACTIVATION_PARAMETERS.get(spec.activation)
        keyword = {param: getattr(spec, param)} if param else {}
        self.rho = functools.partial(ACTIVATIONS[spec.activation], **keyword) if keyword else ACTIVATIONS[spec.activation]
        self.rho_prime = (functools.partial(DERIVATIVES[spec.activation], **keyword) if keyword
                          else DERIVATIVES[spec.activation])
        if self.channels_last:
            self.op.to(memory_format=torch.channels_last)

    @property
    def weight(self) -> torch.Tensor:
        return self.op.weight

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the memory format this layer computes in (channels_last for conv layers that use it)."""
        return x.contiguous(memory_format=torch.channels_last) if self.is_conv and self.channels_last else x

    def prepare(self, x: torch.Tensor, learning: bool = False) -> torch.Tensor:
        """The pre-synaptic input the weights see: ``x`` normalised (``input_norm``) and reflect-padded.

        batch: ``(x - m) / sqrt(v + 1e-5)`` per channel (dense: per feature), with the batch's mean and biased
        variance while ``learning`` (the running ``input_mean``/``input_var`` then move towards them by
        ``BN_MOMENTUM``, with the unbiased variance, as ``torch.nn.BatchNorm2d``), else the running ones.
        image: ``(x - mean(x_b)) / (1e-10 + std(x_b))`` over each sample's entries (unbiased std).
        unit: ``x_b / |x_b|``."""
        norm = self.spec.input_norm
        if norm == "batch":
            flat = x if self.is_conv else x.flatten(1)
            x = F.batch_norm(flat, self.input_mean, self.input_var, None, None, learning, self.momentum,
                             1e-5).view_as(x)
        elif norm == "image":
            dims = tuple(range(1, x.dim()))
            x = x - x.mean(dims, keepdim=True)
            x = x / (1e-10 + x.std(dims, keepdim=True))
        elif norm == "unit":
            x = x / torch.linalg.vector_norm(x.flatten(1), dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
        if self.reflect:
            x = F.pad(x, (self.reflect,) * 4, mode="reflect")
        return x if norm == "none" and not self.reflect else self.as_input(x)

    def potential(self, pre: torch.Tensor, learning: bool = False) -> torch.Tensor:
        """a = (W * mask) pre (conv: at every position), then ``batch_norm`` (batch statistics while ``learning``)."""
        w = self.op.weight if self.mask is None else self.op.weight * self.mask
        if self.is_conv:
            a = F.conv2d(self.as_input(pre), w, self.op.bias, self.op.stride, self.op.padding)
        else:
            a = F.linear(pre.flatten(1), w, self.op.bias)
        if self.spec.batch_norm:
            a = F.batch_norm(a, self.bn_mean, self.bn_var, self.bn_weight, self.bn_bias, learning, self.momentum,
                             1e-5)
        return a

    def masked(self, delta: torch.Tensor) -> torch.Tensor:
        """A weight change restricted to the connections that exist (pruned ones stay 0)."""
        return delta if self.mask is None else delta * self.mask

    def output(self, a: torch.Tensor) -> torch.Tensor:
        """y = rho(a) (``thresholded``: rho(a - theta)), then (``kwta`` > 0) only the k winners of a - theta per
        position, then (``binarize``) 1 where y > 0, else 0."""
        y = self.rho(a - self.threshold.view(1, -1, *[1] * (a.dim() - 2)) if self.spec.thresholded else a)
        if self.spec.kwta:
            y = kwta(a, y, self.spec.kwta, self.threshold)
        if self.spec.binarize:
            y = (y > 0).to(y.dtype)
        return y

    def respond(self, pre: torch.Tensor, learning: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """a = W pre (``pre`` already :meth:`prepare` d) and y = :meth:`output` (a)."""
        a = self.potential(pre, learning)
        return a, self.output(a)

    def forward(self, x: torch.Tensor, learning: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, y) for the layer input ``x`` (:meth:`prepare`, then :meth:`respond`)."""
        return self.respond(self.prepare(x, learning), learning)

    def pool(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` pooled by ``spec.pool`` (conv layers; stride ``pool_stride`` or the window, ``pool_padding``)."""
        spec = self.spec
        if not self.is_conv or spec.pool == 1:
            return y
        pool = F.max_pool2d if spec.pool_kind == "max" else F.avg_pool2d
        return pool(y, spec.pool, spec.pool_stride or spec.pool, spec.pool_padding)

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

    def _check_shortcut(self) -> None:
        c_in, c_out = self.in_shape[0], self.out_shape[0]
        if not self.is_conv or c_in > c_out or self.in_shape[1] % self.out_shape[1] or \
                self.in_shape[1] // self.out_shape[1] != self.in_shape[2] // self.out_shape[2]:
            raise ConfigError(f"network.{self.name}.residual: needs a conv layer whose {list(self.out_shape)} output "
                              f"has at least the channels of its {list(self.in_shape)} input and a size that divides it")

    def with_shortcut(self, out: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """``residual``: ``out`` plus the layer input ``x`` zero-padded to the layer's channels and average-pooled
        to its output size (SPHeRe's third block), else ``out``."""
        if not self.spec.residual:
            return out
        shortcut = F.pad(x, (0, 0, 0, 0, 0, out.shape[1] - x.shape[1]))
        factor = x.shape[-1] // out.shape[-1]
        return out + (F.avg_pool2d(shortcut, factor) if factor > 1 else shortcut)

    def transmit(self, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """What the next layer receives: ``pool(y)``, centred (``center``), plus the input ``x`` (``residual``)."""
        return self.with_shortcut(self.centered(self.pool(y)), x)

    def gather(self, representations: list[torch.Tensor]) -> torch.Tensor:
        """This layer's input from ``representations`` = [glimpses, layer 1's output, ...] (those computed so
        far): the :func:`join` of its ``sources``."""
        return join([representations[i] for i in self.sources]) if self.sources else representations[-1]


def join(inputs: list[torch.Tensor]) -> torch.Tensor:
    """An area's input from several feedforward inputs [B, C_k, ...] of equal sizes: their concatenation along
    the channels, [B, sum_k C_k, ...] (one input: itself)."""
    return torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]


def joined_shape(shapes: list[tuple[int, ...]], keys: list[str], target: str) -> tuple[int, ...]:
    """The shape [sum_k C_k, ...] of the :func:`join` of outputs of ``shapes`` [C_k, ...]; a ConfigError naming the
    edge (``keys[k]``) whose sizes differ from the first input's."""
    for shape, key in zip(shapes[1:], keys[1:]):
        if shape[1:] != shapes[0][1:]:
            raise ConfigError(f"{key}: its source's output of shape {list(shape)} cannot be concatenated along the "
                              f"channels with {target}'s first input of shape {list(shapes[0])} (the sizes after the "
                              "channels differ)")
    return (sum(s[0] for s in shapes), *shapes[0][1:])


def channel_mean(y: torch.Tensor) -> torch.Tensor:
    """[B, C, ...] -> [C]: the mean over the batch and the positions."""
    return y.transpose(0, 1).flatten(1).mean(1)


def needs_calibration(spec: LayerSpec) -> bool:
    """Whether a layer keeps running statistics that :func:`calibrate` sets."""
    return bool(spec.center) or spec.input_norm == "batch" or spec.batch_norm


@torch.no_grad()
def calibrate(layers: list[Layer], x: torch.Tensor) -> None:
    """Set every layer's running statistics to their values on the inputs ``x`` (e.g. training glimpses),
    layer after layer, each seeing its inputs' transmitted outputs (:meth:`Layer.gather`): the batch norms' means and
    (unbiased) variances (``input_norm = "batch"``, ``batch_norm``) and the transmitted channel means
    (``center``). The random-weights baseline is a copy of the calibrated network, so it is normalised and
    centred the same way as the network that learns."""
    representations = [x]
    for layer in layers:
        x = layer.gather(representations)
        if layer.spec.input_norm == "batch" or layer.spec.batch_norm:
            layer.momentum = 1.0  # one update with momentum 1 sets the running statistics to the sample's
            try:
                layer(x, learning=True)
            finally:
                layer.momentum = BN_MOMENTUM
        pooled = layer.pool(layer(x)[1])
        if layer.spec.center:
            layer.transmit_mean.copy_(channel_mean(pooled))
        representations.append(layer.with_shortcut(layer.centered(pooled), x))


def build_layers(specs: list[LayerSpec], in_shape: tuple[int, ...], channels_last: bool = True,
                 seed: int | None = None, inputs: list[list[tuple[int, str]]] | None = None) -> list[Layer]:
    """Layers whose input shapes follow from ``inputs``: per layer, its feedforward inputs as (index into [the
    input, layer 1, ...], the edge's configuration key), their outputs joined along the channels
    (:func:`joined_shape`); without ``inputs`` a chain, each layer's input the previous one's output. With
    ``seed``, layer i's initial weights come from its own stream ``weight_seed(seed, i)`` (the global RNG is left
    untouched)."""
    layers, shapes = [], [tuple(in_shape)]
    for i, spec in enumerate(specs):
        sources = inputs[i] if inputs is not None else [(i, "")]
        shape = joined_shape([shapes[j] for j, _ in sources], [key for _, key in sources], f"network.layers[{i}]")
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(weight_seed(seed, i))
            layer = Layer(spec, shape, f"layers[{i}]", channels_last, tuple(j for j, _ in sources))
        layers.append(layer)
        shapes.append(layer.out_shape)
    return layers
