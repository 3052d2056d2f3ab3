"""Device benchmark: glimpses/s against batch for the small and VGG-6 presets with CLAPP and Oja, host syncs per
event, the fraction of the device's dense matmul rate reached, and the local/backprop step ratio.

    PYTHONPATH=. python benchmarks/gpu.py                  # one CUDA device, about 5 minutes (--budget)
    PYTHONPATH=. python benchmarks/gpu.py --device cpu --presets small --batches 4 --events 3   # the CPU path

Per point (preset, rule, batch): an Experiment on the device (``run.compile`` from ``--compile``), a warm-up,
then ``--events`` events of ``Simulation.run`` timed with the device synchronised at both ends. The FLOPs of
one event are counted by torch's FlopCounterMode (convolutions and matmuls, forward and weight gradients: what
a roofline counts), so FLOP/s = FLOPs per event x events per second, and "of mm" is that rate over the dense
matmul rate measured in the same run (an n x n float32 ``torch.mm``, the device's current precision settings).
Host syncs are structural, not a matter of batch: per (preset, rule), ``run.check_every`` events at the smallest
batch run under :class:`saccade_sim.hostsync.SyncDetector`; "syncs/event" counts the host reads of device
values there (the divergence check's included), "copies/event" the host-to-device copies (the eye's one per
block of draws; from pageable memory, e.g. ``torch.tensor(list, device=...)``, a CUDA copy is a sync too),
"unexpected/event" both kinds outside a deliberate section. On CUDA every timed loop also runs
under ``torch.cuda.set_sync_debug_mode("warn")`` and its warnings are counted ("cuda syncs/event"). The
local/backprop ratio is :mod:`local_vs_backprop`'s measurement on the device at ``--ratio-batch``. Points are
skipped, and listed, once ``--budget`` seconds have passed.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

import local_vs_backprop
from common import DATA, arguments, interleaved, parse, summary, table, timed, write_json
from saccade_sim.experiment import Experiment
from saccade_sim.hostsync import SyncDetector, optimizer_host_tensors


def make(args: argparse.Namespace, preset: str, rule: str, batch: int, check_every: int = 100) -> Experiment:
    return Experiment({"device": args.device, "data": {"source": str(args.data), "train_limit": 2000},
                       "eye": {"batch": batch}, "network": {"preset": preset}, "rule": {"name": rule},
                       "run": {"progress": False, "check_every": check_every, "compile": args.compile},
                       "probe": {"enabled": False}})


def matmul_rate(device: str, n: int, repeats: int = 5) -> float:
    """FLOP/s of an n x n float32 matmul on ``device`` (median of ``repeats`` after a warm-up)."""
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    torch.mm(a, b)
    return 2 * n ** 3 / summary([timed(lambda: torch.mm(a, b)) for _ in range(repeats)])["median"]


def flops_per_event(exp: Experiment) -> float:
    with FlopCounterMode(display=False) as counter:
        exp.simulation.run(1)
    return float(counter.get_total_flops())


def host_syncs(args: argparse.Namespace, preset: str, rule: str, batch: int) -> dict:
    """Host syncs per event over ``args.check_every`` events under the detector (not strict: all are counted)."""
    exp = make(args, preset, rule, batch, args.check_every)
    with SyncDetector(strict=False, host_tensors=lambda: optimizer_host_tensors(a.optimizer for a in exp.agents)) as d:
        exp.simulation.run(args.check_every)
    places = sorted({f"{s.op} at {s.where}" for s in d.unexpected()})
    n = args.check_every
    return {"syncs/event": d.count("sync") / n, "copies/event": d.count("copy") / n,
            "unexpected/event": len(d.unexpected()) / n, "where": places}


def timed_run(exp: Experiment, events: int, cuda: bool) -> tuple[float, int]:
    """Seconds for ``events`` events and, on CUDA, the synchronising calls torch's sync debug mode saw."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            seconds = timed(lambda: exp.simulation.run(events))
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
    return seconds, sum("synchroniz" in str(w.message) for w in seen)


def measure(args: argparse.Namespace, preset: str, rule: str, batch: int, peak: float) -> dict:
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    exp = make(args, preset, rule, batch)
    exp.simulation.run(args.warmup)  # compilation, lazily allocated state, CLAPP's full context window
    flops = flops_per_event(exp)
    times, cuda_syncs = [], 0
    for _ in range(args.repeats):
        seconds, syncs = timed_run(exp, args.events, cuda)
        times.append(seconds)
        cuda_syncs += syncs
    t = summary(times)
    row = {"preset": preset, "rule": rule, "batch": batch, "glimpses/s": args.events * batch / t["median"],
           "spread": t["rel_spread"], "GFLOP/event": flops / 1e9, "GFLOP/s": flops * args.events / t["median"] / 1e9,
           "of mm": flops * args.events / t["median"] / peak}
    if cuda:
        row["cuda syncs/event"] = cuda_syncs / (args.events * args.repeats)
        row["peak GB"] = torch.cuda.max_memory_allocated() / 2 ** 30
    return row


def backprop_ratio(args: argparse.Namespace, preset: str, rule: str) -> dict:
    ns = argparse.Namespace(data=args.data, batch=args.ratio_batch, rule=rule, optimizer="sgd",
                            set=[f"device={args.device}"], steps=args.ratio_steps, repeats=args.repeats)
    return local_vs_backprop.measure(ns, preset)


def main() -> None:
    parser = arguments(__doc__, "gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--presets", nargs="+", default=["small", "vgg6"])
    parser.add_argument("--rules", nargs="+", default=["clapp", "oja"])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 256, 4096])
    parser.add_argument("--events", type=int, default=20, help="events per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=8, help="events before timing (>= CLAPP's context window)")
    parser.add_argument("--check-every", type=int, default=100, help="events of the host-sync pass")
    parser.add_argument("--compile", default="none", help="run.compile of every point")
    parser.add_argument("--ratio-batch", type=int, default=256)
    parser.add_argument("--ratio-steps", type=int, default=5)
    parser.add_argument("--matmul", type=int, default=0, help="n of the n x n matmul (0: 8192 on CUDA, 1024 on CPU)")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds after which remaining points are skipped")
    args = parse(parser)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: CUDA is not available on this machine (use --device cpu for the CPU path)")
        write_json(args.json, args, skipped="CUDA not available")
        return
    start = time.perf_counter()
    peak = matmul_rate(args.device, args.matmul or (8192 if args.device.startswith("cuda") else 1024))
    rows, syncs, ratios, skipped = [], [], [], []
    for preset in args.presets:
        for rule in args.rules:
            if time.perf_counter() - start > args.budget:
                skipped.append(f"{preset}/{rule}")
                continue
            syncs.append({"preset": preset, "rule": rule, **host_syncs(args, preset, rule, min(args.batches))})
            ratios.append(backprop_ratio(args, preset, rule))
            for batch in args.batches:
                if time.perf_counter() - start > args.budget:
                    skipped.append(f"{preset}/{rule}/batch {batch}")
                    continue
                rows.append(measure(args, preset, rule, batch, peak))
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{name}: dense float32 matmul {peak / 1e9:.1f} GFLOP/s; {args.events} events per timed run, median of "
          f"{args.repeats}; run.compile = {args.compile}")
    print(table(rows, list(rows[0])))
    print(f"\nhost syncs over {args.check_every} events (run.check_every = {args.check_every}), batch {min(args.batches)}")
    print(table(syncs, ["preset", "rule", "syncs/event", "copies/event", "unexpected/event"]))
    for s in syncs:
        for place in s["where"]:
            print(f"  {s['preset']}/{s['rule']} unexpected: {place}")
    print(f"\nlocal step / backprop step, batch {args.ratio_batch}")
    print(table(ratios, ["preset", "rule", "local glimpses/s", "backprop glimpses/s", "local/backprop", "ratio min",
                         "ratio max"]))
    if skipped:
        print(f"\nnot measured (over the {args.budget:.0f} s budget): {', '.join(skipped)}")
    print(f"total {time.perf_counter() - start:.0f} s")
    write_json(args.json, args, matmul_flops=peak, rows=rows, syncs=syncs, ratios=ratios, skipped=skipped)


if __name__ == "__main__":
    main()
