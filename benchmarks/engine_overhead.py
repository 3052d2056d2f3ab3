"""Engine overhead: the SimPy engine vs a hand-written batched loop doing the same math.

    PYTHONPATH=. python benchmarks/engine_overhead.py [--batches 1 8 32 128] [--repeats 5] [--threads 1]

Both sides start from the same Experiment (same network, rule, weights and seeded glimpse stream). The
engine runs ``Experiment.simulate`` (SimPy processes, broadcast fan-out, the periodic divergence check);
the hand loop calls, per event, the Eye and each layer agent's own ``step`` (forward, rule update, layer
adaptation, update statistics, optimiser step: the same code), nothing else. The two are timed in
alternation, several rounds; the ratio is taken per round (engine time / loop time) and its median and
spread are reported. Both must end with identical weights, rule parameters and buffers (max |dW| = 0):
otherwise the script exits with status 1 and reports nothing.
"""
from __future__ import annotations

import argparse
from typing import Callable

from common import (DATA, agent_modules, arguments, interleaved, max_difference, parse, require, summary, table,
                    timed, write_json)
from saccade_sim.experiment import Experiment


def make(args: argparse.Namespace, batch: int) -> Experiment:
    return Experiment({"data": {"source": str(args.data), "train_limit": 2000}, "eye": {"batch": batch},
                       "network": {"preset": args.preset}, "rule": {"name": args.rule},
                       "run": {"progress": False}, "probe": {"enabled": False}})


def hand_loop(exp: Experiment, events: int) -> None:
    """The engine's work without the engine: per event the eye's glimpse, then each agent's own step."""
    for _ in range(events):
        g = exp.eye.next_glimpse(0.0)
        for agent in exp.agents:
            g = agent.step(g)


def measure(args: argparse.Namespace, batch: int, loop: Callable[[Experiment, int], None] = hand_loop,
            build: Callable[[argparse.Namespace, int], Experiment] = make, unit: str = "glimpses") -> dict:
    """One row: ``build(args, batch)`` twice, the engine against ``loop`` in alternation, the per-round ratio.
    Rates count the glimpses the Eye emitted (``unit = "fixations"`` adds the eyes per event: an asynchronous
    Eye emits only the eyes whose fixations end in the event's bin)."""
    engine, hand = build(args, batch), build(args, batch)
    events = max(args.min_events, args.glimpses // batch)
    engine.simulate(3), loop(hand, 3)  # warm-up
    stats = interleaved({"engine": lambda: timed(lambda: engine.simulate(events)),
                         "loop": lambda: timed(lambda: loop(hand, events))}, args.repeats)
    diff = max_difference(agent_modules(engine), agent_modules(hand))
    require(diff == 0, f"batch {batch}: after {3 + args.repeats * events} events the engine's and the hand loop's "
                       f"weights differ by max |dW| = {diff:.3g}")
    r = summary([e / h for e, h in zip(stats["engine"]["values"], stats["loop"]["values"])])
    per_event = getattr(engine.eye, "emitted", engine.eye.event * batch) / max(engine.eye.event, 1)
    row: dict = {"batch": batch, "events": events}
    if unit != "glimpses":
        row["eyes/event"] = per_event
    return {**row, f"engine {unit}/s": events * per_event / stats["engine"]["median"],
            f"loop {unit}/s": events * per_event / stats["loop"]["median"],
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
          "interleaved rounds (ratio: per round); both sides end with identical weights (checked)")
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
