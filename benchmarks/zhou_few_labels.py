"""Activation learning (Zhou 2022) vs a backprop MLP of the same size, with few labels per class.

    PYTHONPATH=. python benchmarks/zhou_few_labels.py          # mnist5k, 1/5/10/50 labels per class, 3 seeds
    PYTHONPATH=. python benchmarks/zhou_few_labels.py --big    # 5 seeds, also 100 labels per class

Both models see only the n labelled training images per class (pixels / 255 minus the training mean).
Activation learning: one dense layer of ``--hidden`` linear units learns [x, s * onehot(label)] with the
``activation`` rule (dw_j = y_j (x - sum_k y_k w_k)) through the rule contract; a test image gets the
label whose code gives the largest activation ||y||^2 (s = ``--code-scale`` times the mean image norm). The MLP: x -> hidden
(ReLU) -> 10, cross-entropy, Adam, the same number of steps. Also shown: the same classification with the
activation layer's initial random weights. Accuracy on the 1000 held-out test images.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.layers import Layer
from agents.rules.activation import ActivationLearning, append_label_code, classify
from agents.rules.base import Factors
from saccade_sim.config import LayerSpec, NoOptions

from common import DATA, arguments, machine, mean_sd, parse, table, write_json


def few_labels(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n random indices of each class."""
    return np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c in np.unique(y)])


def activation_learning(x: torch.Tensor, y: torch.Tensor, hidden: int, steps: int, lr: float, scale: float,
                        batch: int, seed: int) -> tuple[Layer, Layer]:
    """Train one dense layer on [x, label code] with the activation rule; returns (trained, initial)."""
    torch.manual_seed(seed)
    layer = Layer(LayerSpec(kind="dense", channels=hidden, activation="linear"), (x.shape[1] + 10,), "al",
                  channels_last=False)
    initial = Layer(layer.spec, layer.in_shape, "al0", channels_last=False)
    initial.load_state_dict(layer.state_dict())
    rule = ActivationLearning(layer, NoOptions(), 0, 1)
    opt = torch.optim.SGD(layer.parameters(), lr=lr)
    data = append_label_code(x, y, 10, scale)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        xb = data[torch.randint(len(data), (batch,), generator=g)]
        a, post = layer(xb)
        rule.update(Factors(xb, a.detach(), post.detach(), torch.ones(batch), None))
        opt.step()
    return layer, initial


def mlp(x: torch.Tensor, y: torch.Tensor, hidden: int, steps: int, batch: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(len(x), (batch,), generator=g)
        loss = nn.functional.cross_entropy(net(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def main() -> None:
    p = arguments(__doc__, "zhou_few_labels")
    p.add_argument("--data", default="mnist5k.npz")
    p.add_argument("--labels", type=int, nargs="*", default=[1, 5, 10, 50], help="labelled images per class")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.002, help="activation learning rate (SGD)")
    p.add_argument("--code-scale", type=float, default=1.0, help="label code size, in mean image norms")
    p.add_argument("--big", action="store_true", help="5 seeds and 100 labels per class too")
    args = parse(p)
    if args.big:
        args.seeds, args.labels = 5, sorted(set(args.labels) | {100})
    d = np.load(DATA / args.data)
    x_all = torch.tensor(d["x"], dtype=torch.float32).flatten(1) / 255
    mean = x_all.mean(0)
    x_all = x_all - mean
    x_test = torch.tensor(d["x_test"], dtype=torch.float32).flatten(1) / 255 - mean
    y_all, y_test = torch.tensor(d["y"]), torch.tensor(d["y_test"])
    scale = args.code_scale * float(x_all.norm(dim=1).mean())
    results: dict[str, Any] = {}
    for n in args.labels:
        runs = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            idx = torch.from_numpy(few_labels(d["y"], n, np.random.default_rng(seed)))
            x, y = x_all[idx], y_all[idx]
            trained, initial = activation_learning(x, y, args.hidden, args.steps, args.lr, scale, args.batch, seed)
            net = mlp(x, y, args.hidden, args.steps, args.batch, seed)
            with torch.no_grad():
                runs.append({
                    "activation": float((classify([trained], x_test, 10, scale) == y_test).float().mean()),
                    "activation_random": float((classify([initial], x_test, 10, scale) == y_test).float().mean()),
                    "mlp": float((net(x_test).argmax(1) == y_test).float().mean()),
                    "wall_s": time.perf_counter() - start})
        results[str(n)] = runs
        print(n, runs, flush=True)
    columns = ["labels / class", "activation learning", "same, random weights", "backprop MLP", "AL - MLP"]
    body = [{"labels / class": n, "activation learning": mean_sd([r["activation"] for r in runs]),
             "same, random weights": mean_sd([r["activation_random"] for r in runs]),
             "backprop MLP": mean_sd([r["mlp"] for r in runs]),
             "AL - MLP": f"{sum(r['activation'] - r['mlp'] for r in runs) / len(runs):+.3f}"}
            for n, runs in results.items()]
    print(f"\nzhou_few_labels: {args.data}, hidden {args.hidden}, {args.steps} steps of batch {args.batch}, "
          f"{args.seeds} seeds, test on {len(y_test)} images; {machine()['summary']}")
    print(table(body, columns, style="markdown"))
    write_json(args.json, args, results=results)


if __name__ == "__main__":
    main()
