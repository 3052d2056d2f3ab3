"""Deterministic random streams: one generator per (seed, logical stream name), never per process."""
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
