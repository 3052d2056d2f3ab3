"""CLAPP's per-event cost: the time of each layer's rule update (the step and its state) per event, its rows written in place or the buffers copied.

    PYTHONPATH=. python benchmarks/clapp_step.py [--batch 32] [--events 30] [--repeats 7] [--threads 1]

Two settings: the ``small`` preset on MNIST, and configs/clapp.toml's protocol (CIFAR-10, 8x8 grey patches
on the 7x7 grid, the 4-layer encoder). Each agent's forward pass and factors are computed once per event
outside the clock; the clock covers every layer's rule update for ``--events`` events after the context window
has filled. Two ways of applying a step (two copies of the experiment, timed in alternation): ``in place``,
``Rule.update`` (the runtime writes the step's rows, ``Step.writes``, into the ring buffers), and ``copy``, the
same with ``Rule.write`` out of place (``Tensor.index_put``: a new buffer per write, the cost of a step that
returns its new buffers). Per setting: the median ms per event of each (min - max over ``--repeats``
rounds) and the median per-round ratio copy / in place. On a tree whose rule writes inside its step (no
``Step.writes``) only ``in place`` is timed.
"""
from __future__ import annotations

import argparse
import functools

import torch

from common import DATA, arguments, interleaved, parse, summary, table, timed, write_json
from agents.rules import base
from agents.rules.base import Factors
from saccade_sim.config import load
from saccade_sim.experiment import Experiment

SETTINGS = {
    "small": lambda args: {"data": {"source": str(DATA / "mnist5k.npz"), "train_limit": 2000},
                           "eye": {"batch": args.batch}, "network": {"preset": "small"}, "rule": {"name": "clapp"},
                           "run": {"progress": False}, "probe": {"enabled": False}},
    "clapp.toml": lambda args: load("configs/clapp.toml", [f"eye.batch={args.batch}", "probe.enabled=false",
                                                           "run.progress=false", "data.train_limit=2000"]),
}


def factor_stream(exp: Experiment, events: int) -> list[list[Factors]]:
    """Per event, each layer's factors (forward passes through the layers, weights held)."""
    out = []
    for _ in range(events):
        g = exp.eye.next_glimpse(exp.eye.time)
        layers = []
        for agent in exp.agents:
            x = agent.layer.prepare(agent.layer.as_input(g.data.detach()), True)
            a, y = agent.layer.respond(x, True)
            layers.append(Factors(x, a.detach(), y.detach(), g.modulator, g))
            g = g.with_data(agent.layer.with_shortcut(agent.layer.centered(agent.layer.pool(y.detach())), g.data))
        out.append(layers)
    return out


def copied_write(rule: base.Rule, w: base.Write) -> None:
    """``Rule.write`` out of place: a new buffer with the row written."""
    setattr(rule, w.name, getattr(rule, w.name).index_put(w.index, w.value, accumulate=w.add))


def measure(args: argparse.Namespace, name: str) -> dict:
    modes = ["in place"] + (["copy"] if "writes" in base.Step._fields else [])  # a tree before Step.writes: one
    cases = {}
    for mode in modes:
        exp = Experiment(SETTINGS[name](args))
        if mode == "copy":
            for agent in exp.agents:
                agent.rule.write = functools.partial(copied_write, agent.rule)
        warm = factor_stream(exp, max(a.rule.depth for a in exp.agents) + 2)
        stream = factor_stream(exp, args.events)

        def run(events, exp=exp):
            for layers in events:
                for agent, f in zip(exp.agents, layers):
                    agent.rule.update(f)

        run(warm)
        cases[mode] = lambda run=run, stream=stream: timed(lambda: run(stream)) / args.events
    stats = interleaved(cases, args.repeats)
    row = {"setting": name, "batch": args.batch, "events": args.events}
    for mode, st in stats.items():
        row[f"{mode} ms/event"] = 1e3 * st["median"]
        row[f"{mode} min - max"] = f"{1e3 * st['min']:.1f} - {1e3 * st['max']:.1f}"
    if "copy" in stats:
        r = summary([c / p for c, p in zip(stats["copy"]["values"], stats["in place"]["values"])])
        row["copy / in place"] = f"{r['median']:.3f} ({r['min']:.3f} - {r['max']:.3f})"
    return row


def main() -> None:
    parser = arguments(__doc__, "clapp_step")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = parse(parser)
    torch.manual_seed(0)
    rows = [measure(args, name) for name in args.settings]
    print(f"CLAPP rule update per event (all layers), {args.threads} thread(s), median of {args.repeats} rounds")
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
