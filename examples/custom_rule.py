"""A simulation script: plug a custom rule and a custom saccade policy into saccade-sim, run, probe.

    python examples/custom_rule.py [--data PATH] [--events N] [--out DIR]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

import saccade_sim as ss
from agents.rules import WEIGHT, Rule, Step
from agents.rules.hebbian import correlation, n_terms
from saccade_sim.analysis.probe import probe_table
from saccade_sim.policies import SaccadePolicy


@dataclass
class GatedHebbOptions:
    decay: float = 1.0  #: weight decay factor of the modulated rule


@ss.RULES.register("gated_hebb")
class GatedHebb(Rule):
    """Modulator-gated Oja: dW = 1/n sum [m > 0] (y x - decay y^2 w), then unit-norm rows."""

    Options = GatedHebbOptions

    def step(self, weights, state, f):
        gate = (f.modulator > 0).to(f.post.dtype).view(-1, *([1] * (f.post.dim() - 1)))
        y, w = f.post * gate, weights[WEIGHT]
        with torch.no_grad():
            decay = (y * y).sum(dim=[0] + list(range(2, y.dim()))).view(-1, *([1] * (w.dim() - 1)))
            return Step({WEIGHT: (correlation(self.layer, f.pre, y) - self.options.decay * decay * w) / n_terms(y)},
                        {}, None)

    @torch.no_grad()
    def after_step(self):
        w = self.layer.weight
        w.div_(w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (w.dim() - 1))))


@ss.POLICIES.register("centre_out")
class CentreOut(SaccadePolicy):
    """Alternate between the central grid position and a random one."""

    def sample(self, step, batch, space, generator):
        if step % 2 == 0:
            return space.grid[space.size // 2].expand(batch, -1)
        return space.grid[torch.randint(space.size, (batch,), generator=generator)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="natural")
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--out", default="runs/custom-rule")
    args = ap.parse_args()
    exp = ss.Experiment({
        "data": {"source": args.data},
        "eye": {"policy": "centre_out", "batch": 16},
        "network": {"preset": "small"},
        "rule": {"name": "gated_hebb", "lr": 0.02, "decay": 1.0},
        "run": {"events": args.events},
        "probe": {"train": 500, "test": 300},
    })
    results = exp.run()
    exp.save(args.out)
    print(probe_table(results))


if __name__ == "__main__":
    main()
