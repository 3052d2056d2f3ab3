"""Analysing a run from Python: train briefly, write the analysis plots and report, then compute a few of the
same statistics by hand for the trained and the random-weights network.

    python examples/analyse_run.py [--data PATH.npz] [--events N] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import saccade_sim as ss
from saccade_sim.analysis import participation_ratio, rsa, similarity_matrix, label_similarity
from saccade_sim.analysis.report import analyze, load_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/mnist5k.npz")
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--stimuli", type=int, default=100, help="held-out stimuli to analyse")
    ap.add_argument("--out", default="runs/analysed")
    args = ap.parse_args()
    exp = ss.Experiment({"data": {"source": args.data}, "network": {"preset": "small"},
                         "rule": {"name": "instar", "competition": "kwta", "k": 1, "threshold_rate": 0.01},
                         "run": {"events": args.events}, "probe": {"train": 400, "test": 200}})
    exp.run()
    exp.save(args.out)

    # 1. everything at once: PNGs + .npz, analysis.json, report.md (embedded figures, probe table, settings)
    summary = analyze(args.out, stimuli=args.stimuli, max_units=16)
    print("report:", Path(args.out, "report.md").resolve())
    layer1 = summary["layers"]["layer1"]
    print("layer1 orientation:", layer1.get("orientation") or f"mean Gabor R2 {layer1['gabor_r2']} (trained, random)")

    # 2. by hand, on the reloaded run: each layer's features of the held-out stimuli as the probe sees them
    run = load_run(args.out)
    idx = run.probe_indices(len(run.test_labels), args.stimuli, "analysis")
    labels = run.test_labels.cpu()[idx].numpy()
    model = label_similarity(labels)
    trained = run.features(run.layers, run.test_store, idx)
    random = run.features(run.initial_layers, run.test_store, idx)
    print(f"{'representation':<14} {'RSA with labels':<24} participation ratio")
    for name, a, b in zip(["input", *(ag.name for ag in run.agents)], trained, random):
        fa, fb = a.numpy(), b.numpy()
        text = f"{rsa(similarity_matrix(fa), model):.3f}"
        if name != "input":
            text += f" (random {rsa(similarity_matrix(fb), model):.3f})"
        print(f"{name:<14} {text:<24} {participation_ratio(fa):.1f}")
    results = json.loads(Path(args.out, "results.json").read_text())
    print("probe:", results["probe"]["layers"], "random:", results["probe"]["baselines"]["random"])


if __name__ == "__main__":
    main()
