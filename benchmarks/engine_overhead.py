"""Engine overhead: the SimPy engine vs a hand-written batched loop doing the same math.

    PYTHONPATH=. python benchmarks/engine_overhead.py [--batches 1 8 32 128] [--repeats 5] [--threads 1]

Both sides start from the same Experiment (same network, rule, weights and seeded glimpse stream). The
engine runs ``Experiment.simulate`` (SimPy processes, broadcast fan-out, layer agents with their update
statistics and the periodic divergence check); the hand-written loop calls, per event, the Eye, each layer's
forward, the rule's update, the optimiser step and ``after_step``, nothing else. The two are timed in
alternation, several rounds; the ratio is taken per round (engine time / loop time) and its median and
spread are reported. Both must end with the same weights (checked: max |W_engine - W_loop|).
"""
from __future__ import annotations

import argparse


from agents.rules.base import Factors
from common import DATA, arguments, interleaved, parse, summary, table, timed, write_json
from saccade_sim.experiment import Experiment


def make(args: argparse.Namespace, batch: int) -> Experiment:
    return Experiment({"data": {"source": str(args.data), "train_limit": 2000}, "eye": {"batch": batch},
                       "network": {"preset": args.preset}, "rule": {"name": args.rule},
                       "run": {"progress": False}, "probe": {"enabled": False}})


def hand_loop(exp: Experiment, events: int) -> None:
    """The same math without the engine: eye -> (forward, rule, optimiser) per layer -> transmit."""
    for _ in range(events):
        g = exp.eye.next_glimpse(0.0)
        x = g.data
        for agent in exp.agents:
            a, y = agent.layer(x)
            agent.rule.update(Factors(x, a, y, g.modulator, g))
            agent.optimizer.step()
            agent.rule.after_step()
            x = agent.layer.transmit(y)


def measure(args: argparse.Namespace, batch: int) -> dict:
    engine, loop = make(args, batch), make(args, batch)
    events = max(args.min_events, args.glimpses // batch)
    engine.simulate(3), hand_loop(loop, 3)  # warm-up
    stats = interleaved({"engine": lambda: timed(lambda: engine.simulate(events)),
                         "loop": lambda: timed(lambda: hand_loop(loop, events))}, args.repeats)
    ratios = [e / h for e, h in zip(stats["engine"]["values"], stats["loop"]["values"])]
    diff = max(float((a.layer.weight - b.layer.weight).abs().max()) for a, b in zip(engine.agents, loop.agents))
    r = summary(ratios)
    return {"batch": batch, "events": events,
            "engine glimpses/s": events * batch / stats["engine"]["median"],
            "loop glimpses/s": events * batch / stats["loop"]["median"],
            "engine/loop": r["median"], "ratio min": r["min"], "ratio max": r["max"], "max |dW|": diff}


def main() -> None:
    parser = arguments(__doc__, "engine_overhead")
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--rule", default="oja")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--glimpses", type=int, default=4096, help="glimpses per timed run (events = this / batch)")
    parser.add_argument("--min-events", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parse(parser)
    rows = [measure(args, b) for b in args.batches]
    print(f"preset {args.preset}, rule {args.rule}, {args.threads} thread(s), median of {args.repeats} "
          "interleaved rounds (ratio: per round)")
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
