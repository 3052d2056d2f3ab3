"""Deterministic random streams: one generator per (seed, logical stream name), never per process.

Every random draw of a run comes from one of these streams (nothing uses the global RNGs):

=====================  ====================================  ==========================================
stream                 names                                 what it draws
=====================  ====================================  ==========================================
data split / crops     ``(seed, "data")``                    held-out split, photo crops
data limits            ``(seed, "data-limit")``              ``train_limit`` / ``test_limit`` subsets
eye of shard s         ``(seed, "eye", s)``                  stimulus order, jumps, saccade targets
weights of layer i     ``(seed, "weights", i)``              initial weights of layer i
rule of layer i        ``(seed, "rule", i)``                 a rule's own parameters (heads, predictors)
probe split            ``(seed, "probe", "train"/"test")``   which stimuli the probe trains / tests on
=====================  ====================================  ==========================================

A stream depends only on its names, so adding a layer does not change another layer's weights, and a
logical shard ``s`` draws the same stimuli whichever process (rank) simulates it.
"""
from __future__ import annotations

import hashlib

import torch


def stream_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from ``seed`` and the stream's names (e.g. ``"eye"``, ``"shard", 3``)."""
    digest = hashlib.sha256(repr((seed,) + names).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, *names: object) -> torch.Generator:
    """A CPU ``torch.Generator`` for one logical stream (CPU so that CPU and GPU runs draw the same)."""
    g = torch.Generator()
    g.manual_seed(stream_seed(seed, *names))
    return g


def eye_generator(seed: int, shard: int = 0) -> torch.Generator:
    """The stream of the eyes of logical shard ``shard``: stimulus order, jumps and saccade targets."""
    return generator(seed, "eye", shard)


def weight_seed(seed: int, layer: int) -> int:
    """Seed of layer ``layer``'s initial weights (drawn from torch's default initialisers)."""
    return stream_seed(seed, "weights", layer)
