"""GPU section: glimpses/s, device utilisation, and proof that the event loop never synchronises host and
device per event. Skips cleanly (exit code 0, ``"skipped"`` in the JSON) where CUDA is not available.

    PYTHONPATH=. python benchmarks/gpu.py [--batches 32 128 512] [--events 200]

The timed loop runs under ``torch.cuda.set_sync_debug_mode("error")``: any synchronising call inside it
(``.item()``, a device-to-host copy, ``nonzero`` ...) raises, so a completed run is the proof. The divergence
check (one deliberate sync every ``run.check_every`` events) is pushed past the end of the timed loop.
Utilisation is sampled every 50 ms by ``torch.cuda.utilization()`` (needs pynvml; reported as null without).
"""
from __future__ import annotations

import argparse
import threading
import time

import torch

from common import DATA, arguments, parse, summary, table, write_json


def sample_utilisation(stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        try:
            out.append(float(torch.cuda.utilization()))
        except Exception:  # pynvml missing or unsupported: utilisation is reported as unknown
            return
        time.sleep(0.05)


def measure(args: argparse.Namespace, batch: int) -> dict:
    from saccade_sim.experiment import Experiment

    exp = Experiment({"device": "cuda", "data": {"source": str(args.data), "train_limit": 2000},
                      "eye": {"batch": batch}, "network": {"preset": args.preset}, "rule": {"name": args.rule},
                      "run": {"progress": False, "check_every": 10 ** 9}, "probe": {"enabled": False}})
    exp.simulate(5)
    torch.cuda.synchronize()
    times, util = [], []
    for _ in range(args.repeats):
        stop = threading.Event()
        sampler = threading.Thread(target=sample_utilisation, args=(stop, util))
        sampler.start()
        start = time.perf_counter()
        torch.cuda.set_sync_debug_mode("error")
        try:
            exp.simulation.run(args.events)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        stop.set()
        sampler.join()
    t = summary(times)
    return {"batch": batch, "glimpses/s": args.events * batch / t["median"], "spread": t["rel_spread"],
            "utilisation %": summary(util)["median"] if util else None, "syncs per event": 0,
            "peak GB": torch.cuda.max_memory_allocated() / 2 ** 30}


def main() -> None:
    parser = arguments(__doc__, "gpu", threads=False)
    parser.add_argument("--data", default=DATA / "mnist5k.npz")
    parser.add_argument("--preset", default="vgg6")
    parser.add_argument("--rule", default="oja")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parse(parser)
    if not torch.cuda.is_available():
        print("GPU section skipped: CUDA is not available on this machine")
        write_json(args.json, args, skipped="CUDA not available")
        return
    rows = [measure(args, b) for b in args.batches]
    print(f"{torch.cuda.get_device_name()}, preset {args.preset}, rule {args.rule}, {args.events} events per run, "
          f"median of {args.repeats}; every timed loop ran under set_sync_debug_mode('error')")
    print(table(rows, list(rows[0])))
    write_json(args.json, args, rows=rows)


if __name__ == "__main__":
    main()
