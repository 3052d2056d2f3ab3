"""Per-layer probe tables on the shared audio and video data, for each rule given.

    PYTHONPATH=. python benchmarks/modalities.py [--rules oja instar] [--events 300] [--rule-json '{"lr": 0.001}'] [--threads 1]

FSDD spoken digits (speaker ``theo`` held out: the network and the probe never hear him), Speech
Commands (a random 20% of the speakers held out), Moving-MNIST
clips, and the three unlabelled mp4 videos (segment classification: which video a segment comes from;
test segments from the last 30% of each video's time). Prints one table per run and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import DATA
from saccade_sim import io
from saccade_sim.analysis.probe import probe_table
from saccade_sim.experiment import Experiment

SETUPS = {
    "fsdd (speaker theo held out)": {
        "data": {"modality": "audio", "source": str(DATA / "fsdd"), "group_pattern": "^[^_]+_([^_]+)_",
                 "test_groups": ["theo"]},
        "probe": {"train": 1000, "test": 500},
    },
    "speech_commands (20% of speakers held out)": {
        "data": {"modality": "audio", "source": str(DATA / "speech_commands"), "group_pattern": "^[^_]+_([^_]+)_"},
        "probe": {"train": 0, "test": 0},
    },
    "moving_mnist": {
        "data": {"modality": "video", "source": str(DATA / "moving_mnist.npz")},
        "glimpse": {"patch": 16, "stride": 16, "frame_stride": 4},
        "probe": {"train": 600, "test": 200},
    },
    "video/*.mp4 (segments)": {
        "data": {"modality": "video", "source": str(DATA / "video"), "crop_size": 48, "crops_per_photo": 100,
                 "test_fraction": 0.3},
        "glimpse": {"size": 96, "fps": 12.5, "clip_frames": 8, "frames": 4, "frame_stride": 4, "patch": 16,
                    "stride": 16},
        "probe": {"train": 0, "test": 0},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["oja", "instar"])
    parser.add_argument("--events", type=int, default=300, help="glimpse events per run (x eye.batch 16)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--rule-json", default="{}", help='extra [rule] keys, e.g. \'{"lr": 0.001}\'')
    parser.add_argument("--out", default="benchmarks/modalities.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for setup in args.setups:
        for rule in args.rules:
            cfg = {**SETUPS[setup], "rule": {"name": rule, **json.loads(args.rule_json)}, "network": {"preset": "small"},
                   "run": {"events": args.events, "progress": False}}
            exp = Experiment(cfg)
            results = exp.run()
            print(f"\n## {setup}, rule {rule}: {results['glimpses']} glimpses, {exp.modality.space.size} per stimulus "
                  f"of shape {list(exp.modality.glimpse_shape)}, train {len(exp.split.train)} / test {len(exp.split.test)}")
            print(probe_table(results))
            rows.append({"setup": setup, "rule": exp.config.to_dict()["rule"], "glimpse_shape": list(exp.modality.glimpse_shape),
                         "glimpses_per_stimulus": exp.modality.space.size, **{k: results[k] for k in
                         ("glimpses", "wall_s", "probe", "classes")}})
            io.write_json(Path(args.out), rows)


if __name__ == "__main__":
    main()
