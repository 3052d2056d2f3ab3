"""Active vision: CLAPP under raster / random / surprise / saliency eyes, and the engine overhead with asynchronous eyes.

    PYTHONPATH=. python benchmarks/active_vision.py policies --seeds 0 1 2 --jobs 2 --events 600 \\
        --set 'network.layers=[{channels=64,bias=true},{channels=128,pool=2,bias=true}]'
    PYTHONPATH=. python benchmarks/active_vision.py overhead --batches 8 32 --repeats 5

``policies``: configs/clapp.toml (the released CLAPP protocol scaled to a CPU) with ``eye.policy`` each of
raster, random (grid positions), surprise (``layer1/loss``: the hinge of layer 1's prediction of its own
glimpse, remembered per grid cell, with inhibition of return) and saliency (Itti-Koch feature contrast of the
stimulus, with inhibition of return), at the same number of events (equal glimpse budgets), one sweep run
(:func:`saccade_sim.sweep.run_sweep`) per policy and seed. CLAPP pairs a target with the remembered glimpse
``k`` grid rows above it in the same column (gaze geometry, any policy): ``rule.window`` is set to one
presentation (49 events) so that a non-raster eye's earlier glimpses stay available as contexts; under the
raster this finds exactly the pairs of the default window (the glimpse k rows above is the one k events
earlier). The table gives per policy the raw-input probe, each layer's probe beside its random-weights twin,
and the paired gain (trained - random of the same seed) mean ± sd over seeds with how many are above.

``overhead``: as benchmarks/engine_overhead.py (the SimPy engine vs a hand loop calling the same Eye and agents;
identical weights checked) with asynchronous eyes: gamma fixation durations, main-sequence saccades, eyes
gathered per time bin into one event (``[eye.motor]``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, arguments, machine, parse, run_records, sweep_arguments, table, write_json  # noqa: E402
from engine_overhead import measure  # noqa: E402

from saccade_sim.experiment import Experiment  # noqa: E402
from saccade_sim.sweep import run_sweep  # noqa: E402

POLICIES = ("raster", "random", "surprise", "saliency")


def policies(args: argparse.Namespace) -> None:
    overrides = [f"run.events={args.events}", f"probe.train={args.probe_train}", f"probe.test={args.probe_test}",
                 "rule.window=49", *args.set]
    sweep = run_sweep(args.config, grid={"eye.policy": list(args.policies)}, seeds=args.seeds, out=args.out,
                      jobs=args.jobs, threads=args.threads, overrides=overrides)
    print(f"\nactive_vision policies: {args.config} {' '.join(overrides)}; seeds {args.seeds}; "
          f"{machine()['summary']}, {args.threads} thread(s) per run; runs in {Path(args.out).resolve()}")
    print(sweep.markdown())
    write_json(args.json, args, overrides=overrides, table=sweep.rows, markdown=sweep.markdown(),
               runs=run_records(sweep))


def make(args: argparse.Namespace, batch: int) -> Experiment:
    return Experiment({"data": {"source": str(args.data), "train_limit": 2000},
                       "eye": {"batch": batch, "fixation_ms": 280.0,
                               "motor": {"timing": "gamma", "bin_ms": args.bin_ms}},
                       "network": {"preset": args.preset}, "rule": {"name": args.rule},
                       "run": {"progress": False}, "probe": {"enabled": False}})


def hand_loop(exp: Experiment, events: int) -> None:
    """The engine's work without the engine: per event the eye's glimpse, then each agent's own step."""
    for _ in range(events):
        g = exp.eye.next_glimpse(exp.eye.next_time())
        for agent in exp.agents:
            g = agent.step(g)


def overhead(args: argparse.Namespace) -> None:
    rows = [measure(args, batch, loop=hand_loop, build=make, unit="fixations") for batch in args.batches]
    print(f"asynchronous eyes (gamma fixations, bin {args.bin_ms} ms), preset {args.preset}, rule {args.rule}, "
          f"{args.threads} thread(s), median of {args.repeats} interleaved rounds; identical weights checked")
    print(table(rows, list(rows[0])))
    write_json(args.json.replace(".json", "_overhead.json"), args, rows=rows)


def main() -> None:
    parser = arguments(__doc__, "active_vision")
    sub = parser.add_subparsers(dest="part", required=True)
    pol = sub.add_parser("policies", help="CLAPP under four saccade policies")
    pol.add_argument("--config", default="configs/clapp.toml")
    pol.add_argument("--policies", nargs="+", default=list(POLICIES))
    pol.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    pol.add_argument("--events", type=int, default=600)
    pol.add_argument("--probe-train", type=int, default=1000)
    pol.add_argument("--probe-test", type=int, default=500)
    pol.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    sweep_arguments(pol, "active_vision")
    over = sub.add_parser("overhead", help="engine / hand loop with asynchronous eyes")
    over.add_argument("--data", default=DATA / "mnist5k.npz")
    over.add_argument("--preset", default="small")
    over.add_argument("--rule", default="oja")
    over.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    over.add_argument("--bin-ms", type=float, default=10.0)
    over.add_argument("--glimpses", type=int, default=4096)
    over.add_argument("--min-events", type=int, default=50)
    over.add_argument("--repeats", type=int, default=5)
    args = parse(parser)
    policies(args) if args.part == "policies" else overhead(args)


if __name__ == "__main__":
    main()
