"""Activation learning by local competition (Zhou 2022).

Plasticity, for unit j with weight w_j, linear output y = W x (``a``; conv: at every input patch), summed
over the batch and positions and divided by their count n:

    dw_j = 1/n sum y_j (x - sum_k y_k w_k)        i.e.  dW = (Y^T X - (Y^T Y) W) / n

(in Zhou's notation dw_ij = eta y_j (x_i - sum_k w_ik y_k) with y = W^T x). Each unit learns the part of
the input that the other units do not already explain: an Oja-subspace competition. What a layer
transmits is its activation function of ``a``; Zhou's choice is the norm-keeping non-linearity
``activation = "norm_keeping"`` (:func:`agents.layers.norm_keeping`).

The paradigm: the output activation ``||y_L||^2`` measures how typical an input is
(:func:`activation_score`). Classification appends a label code to the input and picks the label with the
largest activation (:func:`classify`); a partly hidden input is completed by projecting it onto what
the first layer has learned while keeping the known part (:func:`complete`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from saccade_sim.registry import RULES

from .base import WEIGHT, Factors, Rule, Step
from .hebbian import correlation, n_terms

if TYPE_CHECKING:  # annotations only: a rule is given its layer, it does not build one
    from ..layers import Layer


def activation_delta(layer: Layer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dW = (C(y, x) - (Y^T Y) W) / n, with Y^T Y the [C, C] output correlation over batch and positions."""
    w = layer.weight
    yy = y.transpose(0, 1).reshape(y.shape[1], -1)
    explained = (yy @ yy.t()) @ w.flatten(1)
    return layer.masked((correlation(layer, x, y) - explained.view_as(w)) / n_terms(y))


@RULES.register("activation")
class ActivationLearning(Rule):
    """Activation learning (Zhou): dw_j = y_j (x - sum_k y_k w_k), a local competition of linear units."""

    def step(self, weights, state, f: Factors) -> Step:
        """dW = :func:`activation_delta` of the input x and the potential a."""
        with torch.no_grad():
            return Step({WEIGHT: activation_delta(self.layer, f.pre, f.a)}, {}, None)


def append_label_code(x: torch.Tensor, labels: torch.Tensor, n_classes: int, scale: float) -> torch.Tensor:
    """[x, scale * onehot(label)]: flat inputs [B, D] -> [B, D + n_classes]."""
    return torch.cat([x.flatten(1), scale * F.one_hot(labels, n_classes).to(x.dtype)], dim=1)


@torch.no_grad()
def activation_score(layers: Sequence[Layer], x: torch.Tensor) -> torch.Tensor:
    """||a_L||^2 per input [B]: the squared norm of the last layer's potential after the forward pass (through the
    network's graph: each layer's input gathered from its sources)."""
    representations = [x]
    for layer in layers[:-1]:
        x = layer.gather(representations)
        representations.append(layer.transmit(layer(x)[1], x))
    return layers[-1](layers[-1].gather(representations))[0].flatten(1).square().sum(1)


@torch.no_grad()
def classify(layers: Sequence[Layer], x: torch.Tensor, n_classes: int, scale: float) -> torch.Tensor:
    """argmax_c ||a_L([x, scale * onehot(c)])||^2 for flat inputs [B, D] -> labels [B]."""
    scores = [activation_score(layers, append_label_code(x, torch.full((len(x),), c, dtype=torch.long,
                                                                      device=x.device), n_classes, scale))
              for c in range(n_classes)]
    return torch.stack(scores, dim=1).argmax(1)


@torch.no_grad()
def complete(layer: Layer, x: torch.Tensor, known: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """Complete the hidden entries (``known`` False) of flat inputs [B, D] through a dense layer:
    alternately project onto the learned subspace (x <- W^T W x) and restore the known entries."""
    w = layer.weight.flatten(1)
    out = torch.where(known, x, torch.zeros_like(x))
    for _ in range(steps):
        out = torch.where(known, x, (out @ w.t()) @ w)
    return out
