"""Roofline line of the default job: its glimpses/s beside the same convolutions alone, so the share of the
engine, the rule and the optimiser is visible.

    PYTHONPATH=. python benchmarks/roofline.py [--events 200] [--big 4096] [--device cpu] [--set KEY=VALUE ...]

The job is ``saccade-sim run``'s default configuration (``--set`` changes it), timed over ``--events`` events of
``Experiment.simulate`` after a warm-up. "Convolutions alone" runs, for every layer, its forward convolution
and one weight gradient of the same shape (``agents.rules.hebbian.correlation``, what the rules call: the
minimum of any local rule; CLAPP's deferred timing computes its weight gradient over twice the batch) on that
layer's real inputs: once at the job's batch (the same calls, without anything else) and once with ``--big``
glimpses in one batch (what batching could reach). Between the two, the job's agents' steps without the engine
(engine_overhead.py's hand loop) split the gap into the rule and optimiser's share and the engine's. Rounds
alternate; medians are reported.
"""
from __future__ import annotations

import argparse

import torch

from agents.rules.hebbian import correlation
from engine_overhead import hand_loop
from common import arguments, interleaved, parse, table, timed, write_json
from saccade_sim.config import load
from saccade_sim.experiment import Experiment


def layer_inputs(exp: Experiment, batch: int) -> list[torch.Tensor]:
    """Each layer's input for ``batch`` glimpses of the job's eye (the previous layers' transmitted outputs)."""
    xs, x = [], torch.cat([exp.eye.next_glimpse(0.0).data for _ in range(-(-batch // exp.eye.batch))])[:batch]
    with torch.no_grad():
        for layer in exp.layers:
            x = layer.as_input(x)
            xs.append(x)
            x = layer.transmit(layer(x)[1])
    return xs


def convolutions(exp: Experiment, xs: list[torch.Tensor], repeats: int) -> None:
    """Forward and one weight gradient of every layer, ``repeats`` times."""
    with torch.no_grad():
        for _ in range(repeats):
            for layer, x in zip(exp.layers, xs):
                correlation(layer, x, layer.potential(x))


def main() -> None:
    parser = arguments(__doc__, "roofline")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--big", type=int, default=4096, help="glimpses of the one-batch convolutions")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parse(parser)
    cfg = load(None, ["run.progress=false", "probe.enabled=false", f"device={args.device}", *args.set])
    exp = Experiment(cfg)
    b = cfg.eye.batch
    small, big = layer_inputs(exp, b), layer_inputs(exp, args.big)
    exp.simulate(8)  # warm-up: lazily allocated state, CLAPP's full context window
    convolutions(exp, small, 2), convolutions(exp, big, 1)
    stats = interleaved({"job": lambda: timed(lambda: exp.simulate(args.events)),
                         "steps": lambda: timed(lambda: hand_loop(exp, args.events)),
                         "same": lambda: timed(lambda: convolutions(exp, small, args.events)),
                         "big": lambda: timed(lambda: convolutions(exp, big, 1))}, args.repeats)
    rate = {k: (args.big if k == "big" else args.events * b) / v["median"] for k, v in stats.items()}
    what = {"job": f"default job ({cfg.rule.name}, {cfg.network.preset}, {cfg.data.source}), batch {b}",
            "steps": f"its agents' steps without the engine, batch {b}",
            "same": f"its convolutions alone (forward + weight gradient), batch {b}",
            "big": f"the same convolutions, one batch of {args.big}"}
    rows = [{"what": what[k], "glimpses/s": rate[k], "of convolutions": rate[k] / rate["same"]} for k in what]
    print(f"{args.device}, {args.threads} thread(s), {args.events} events, median of {args.repeats} alternating rounds")
    print(table(rows, ["what", "glimpses/s", "of convolutions"], style="left"))
    per = {k: 1 / rate[k] for k in rate}  # seconds per glimpse
    print(f"time of the job at batch {b}: convolutions {per['same'] / per['job']:.0%}, rule + optimiser + layer "
          f"bookkeeping {(per['steps'] - per['same']) / per['job']:.0%}, engine {(per['job'] - per['steps']) / per['job']:.0%}")
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
