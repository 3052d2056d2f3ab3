"""Scale-out with ``torch.distributed``: ranks run their own SimPy environment over their own eyes and
average the layers' weight changes.

Launch with the standard tool, ``torchrun --nproc_per_node=N -m saccade_sim run CONFIG`` (several
machines: torchrun's usual rendezvous). Each rank:

- runs the contiguous range of logical shards ``[r S/N, (r+1) S/N)`` of ``eye.shards = S`` (each shard has
  its own seeded stimulus stream, :mod:`saccade_sim.eye`), i.e. ``eye.batch / N`` eyes;
- every event, lets each layer's rule write its change into ``.grad`` as in a single process, then
  synchronises it every ``distributed.sync_every = K`` events:

  * K = 1 (synchronous): before the optimiser step, ``.grad <- 1/N sum_r .grad_r`` (one all-reduce per
    layer and event). Rules average their change over their batch, so this is the change the full batch
    gives in one process: N ranks x B/N eyes match 1 rank x B eyes up to float reduction order.
  * K > 1 (local SGD with periodic weight averaging): each rank applies its own changes with its own
    optimiser; after every K-th event the parameters are averaged, ``W <- 1/N sum_r W_r``. Since all ranks
    start the period from the same W, this is the same as adding the average of the K accumulated local
    updates. Optimiser moments (Adam) and rule buffers stay per rank.

Only rank 0 probes and writes outputs and checkpoints; gloo runs on CPU, NCCL on CUDA.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist

from .errors import ConfigError

BACKENDS = ("auto", "gloo", "nccl")


@dataclass
class DistributedConfig:
    sync_every: int = 1  #: K: events between synchronisations (1 = average the changes every event)
    backend: str = "auto"  #: "auto" (gloo on CPU, nccl on CUDA), "gloo" or "nccl"

    def validate(self, path: str) -> None:
        if self.sync_every < 1:
            raise ConfigError(f"{path}.sync_every: must be >= 1, got {self.sync_every}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"{path}.backend: unknown value {self.backend!r}; valid choices: {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` (1 without a process group)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shards(self, n_shards: int) -> range:
        """The contiguous range of logical shards this rank runs."""
        if n_shards % self.size:
            raise ConfigError(f"eye.shards: {n_shards} logical shards cannot be split evenly over {self.size} "
                              f"ranks; set eye.shards to a multiple of {self.size}")
        per = n_shards // self.size
        return range(self.rank * per, (self.rank + 1) * per)


def world() -> World:
    """The current process group (as set up by :func:`init_from_env` or the caller), or a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(cfg: DistributedConfig, device: str) -> World:
    """Join the process group that torchrun describes in the environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR`` ...); without it (or with one process) nothing is initialised."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = device.startswith("cuda")
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return world()


def shutdown(clean: bool = True) -> None:
    """Leave the process group (if any). After a clean run every rank first waits at a barrier, so that no
    rank tears its connections down while another still finishes (rank 0 probes and writes alone); gloo
    aborted a rank that left early (SIGABRT, "terminate called without an active exception", CI 2026-12-02)."""
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def local_device(name: str, w: World) -> str:
    """``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``) in a multi-process run."""
    return f"cuda:{w.local_rank}" if name == "cuda" and w.size > 1 else name


def average_(tensors: Sequence[torch.Tensor], w: World) -> None:
    """In place: t <- 1/N sum over ranks of t, for all tensors in one all-reduce."""
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= w.size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view(t.shape))
        offset += t.numel()


class WeightSync:
    """The distributed hook of one layer agent (module docstring): :meth:`before_step` averages ``.grad``
    (K = 1), :meth:`after_step` averages the parameters every K-th event (K > 1). ``buffers`` (running
    statistics such as a layer's transmitted channel means) are averaged with them."""

    def __init__(self, params: Sequence[torch.nn.Parameter], every: int, w: World,
                 buffers: Sequence[torch.Tensor] = ()) -> None:
        self.params = list(params)
        self.buffers = list(buffers)
        self.every = every
        self.world = w
        self.events = 0

    @torch.no_grad()
    def before_step(self) -> None:
        """K = 1: .grad <- mean over ranks (a parameter without ``.grad`` counts as a zero change)."""
        if self.every != 1:
            return
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        average_([p.grad for p in self.params] + self.buffers, self.world)

    @torch.no_grad()
    def after_step(self) -> None:
        """K > 1: after every K-th event W <- mean over ranks of W."""
        self.events += 1
        if self.every > 1 and self.events % self.every == 0:
            average_(self.params + self.buffers, self.world)


def make_sync(params: Sequence[torch.nn.Parameter], cfg: DistributedConfig, w: World,
              buffers: Sequence[torch.Tensor] = ()) -> WeightSync | None:
    """The hook for one agent, or None in a single process."""
    return WeightSync(params, cfg.sync_every, w, buffers) if w.size > 1 else None


def gather_keyed(parts: dict[Any, Any], w: World) -> dict[Any, Any]:
    """The union over ranks of each rank's ``parts`` (disjoint keys, e.g. shard ids), sorted by key (a
    collective: all ranks call it); unchanged in one process."""
    if w.size == 1:
        return parts
    every: list[Any] = [None] * w.size
    dist.all_gather_object(every, parts)
    return dict(sorted(((k, v) for p in every for k, v in p.items()), key=lambda kv: kv[0]))


def gather_shards(state: dict[str, Any], w: World) -> dict[str, Any]:
    """An Eye state with every rank's shards (a collective: all ranks call it); unchanged in one process."""
    return {**state, "shards": gather_keyed(state["shards"], w)}
