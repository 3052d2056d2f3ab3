"""Persisting an experiment: its whole state for a bit-identical continuation (weights, rule states and dendritic
inputs with their per-eye shards, optimisers, RNGs, the eye's streams, the clock) and the run folder's files
(:class:`Persistence`, a part of :class:`saccade_sim.experiment.Experiment`)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.agent import LayerAgent

from . import distributed, io, runfolder
from .monitors import save_recordings

CHECKPOINT_FORMAT = 1  #: version of the checkpoint layout written by :meth:`Persistence.state_dict`


def rng_states() -> dict[str, Any]:
    """The global RNGs (torch CPU and CUDA, numpy, random), for plugins that draw from them."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "random": random.getstate()}


def set_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, *rest = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))
    random.setstate(state["random"])


class Persistence:
    """Checkpoints and the run folder of an experiment."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: weights (current and initial), rule and optimiser
        states, every RNG state, the eye's stream position, the clock, the history and registered states.
        Plain containers of tensors and numbers only (loadable with ``weights_only``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "agents": [self._agent_state(a) for a in self.agents],
            "initial_layers": [layer.state_dict() for layer in self.initial_layers],
            "eye": distributed.gather_shards(self.eye.state_dict(), self.world),
            "clock_ms": float(self.simulation.env.now),
            "rng": rng_states(),
            "history": self.history,
            "wall_s": self.wall_s,
            "decoding_wall_s": self.decoding_wall_s,
            "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()},
            "decoding": self.decoding,
        }

    def _agent_state(self, agent: LayerAgent) -> dict[str, Any]:
        """``agent.state_dict()`` with its per-eye tensors as {shard id: that shard's eyes}, gathered from every rank
        (a collective in a distributed run): the rule's per-eye buffers (``Rule.eye_buffers``, dim 1 = eyes) and
        the outputs its dendritic edges delivered (``dendritic_inputs``, dim 0 = eyes)."""
        state = agent.state_dict()
        rule = state["rule"]
        for name in agent.rule.eye_buffers:
            if rule[name].numel():
                rule[name] = self._shards(rule[name], 1)
        state["dendritic_inputs"] = {source: self._shards(z, 0) for source, z in state["dendritic_inputs"].items()}
        return state

    def _shards(self, tensor: torch.Tensor, dim: int) -> dict[int, torch.Tensor]:
        """{shard id: its eyes of ``tensor`` (along ``dim``), on the CPU}, over every rank."""
        chunks = tensor.split(self.eye.per_shard, dim)
        return distributed.gather_keyed({s: c.to("cpu", copy=True) for s, c in zip(self.eye.shard_ids, chunks)},
                                        self.world)

    def _own_eyes(self, agent: LayerAgent, state: dict[str, Any]) -> dict[str, Any]:
        """The inverse of :meth:`_agent_state` for this process: the per-eye tensors of its own shards."""
        def own(parts: dict[int, torch.Tensor], dim: int) -> torch.Tensor:
            return torch.cat([parts[s] for s in self.eye.shard_ids], dim)

        rule = state["rule"].copy()
        for name in agent.rule.eye_buffers:
            if isinstance(rule.get(name), dict):
                rule[name] = own(rule[name], 1)
        inputs = {source: own(z, 0) if isinstance(z, dict) else z
                  for source, z in state.get("dendritic_inputs", {}).items()}
        return {**state, "rule": rule, "dendritic_inputs": inputs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into this (freshly built, same-config) experiment and rebuild
        the SimPy processes at the saved clock."""
        if len(state["agents"]) != len(self.agents):
            raise ValueError(f"checkpoint has {len(state['agents'])} layers, this network {len(self.agents)}")
        self.eye.load_state_dict(state["eye"])  # first: it names a missing shard
        for agent, s in zip(self.agents, state["agents"]):
            agent.load_state_dict(self._own_eyes(agent, s))
        for layer, s in zip(self.initial_layers, state["initial_layers"]):
            layer.load_state_dict(s)
        set_rng_states(state["rng"])
        self.history = list(state["history"])
        self.decoding = list(state["decoding"])
        self.wall_s = state["wall_s"]
        self.decoding_wall_s = state.get("decoding_wall_s", 0.0)  # absent from checkpoints of 0.1.0
        missing = sorted(set(self.stateful) - set(state["stateful"]))
        if missing:
            raise ValueError(f"checkpoint lacks the registered state {missing[0]!r}")
        for name, obj in self.stateful.items():
            obj.load_state_dict(state["stateful"][name])
        self.simulation = self._new_simulation(state["clock_ms"])

    def save(self, out: str | Path) -> Path:
        """Write ``config.json``, ``results.json``, ``checkpoint.pt``, ``history.npz`` and plots into ``out``.
        In a distributed run every rank calls it (the eye state is gathered) and only rank 0 writes."""
        from .plots import learning_curve

        state = self.state_dict()
        out = Path(out)
        if not self.world.is_main:
            return out
        runfolder.create(out)
        with runfolder.lock(out):  # one writer per folder (re-entrant: the CLI already holds it)
            io.write_json(out / "config.json", self.config.to_dict())
            io.save_torch(out / "checkpoint.pt", state)
            keys = sorted({k for h in self.history for k in h})
            io.save_npz(out / "history.npz",
                        {k.replace("/", "."): np.array([h.get(k, np.nan) for h in self.history]) for k in keys})
            learning_curve(self.history, out / "learning_curve.png")
            save_recordings(self.monitors, out)
            if self.eye.trace is not None:
                io.save_npz(out / runfolder.SCANPATH, self.eye.trace.arrays())
            if self.decoding:
                io.write_json(out / runfolder.DECODING, self.decoding)
            if hasattr(self, "results"):
                io.write_json(out / "results.json", self.results)
        return out
