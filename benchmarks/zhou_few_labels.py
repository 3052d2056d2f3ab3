"""Activation learning (Zhou 2022) vs a backprop MLP of the same size, with few labels per class.

    PYTHONPATH=. python benchmarks/zhou_few_labels.py          # mnist5k, 1/5/10/50 labels per class, 3 seeds
    PYTHONPATH=. python benchmarks/zhou_few_labels.py --big    # 5 seeds, also 100 labels per class
    PYTHONPATH=. python benchmarks/zhou_few_labels.py --inputs centred   # the earlier inputs (not unit length)

Both models see only the n labelled training images per class: with ``--inputs unit`` (Zhou's) each image's
pixels / 255 scaled to unit length; with ``centred`` pixels / 255 minus the training mean.
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

from common import DATA, arguments, machine, mean_sd, mean_se, parse, table, write_json


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


def inputs(d: Any, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and test images [N, 784]: pixels / 255 scaled to unit length (``unit``, Zhou) or minus the
    training mean (``centred``)."""
    x = torch.tensor(d["x"], dtype=torch.float32).flatten(1) / 255
    x_test = torch.tensor(d["x_test"], dtype=torch.float32).flatten(1) / 255
    if kind == "unit":
        return x / x.norm(dim=1, keepdim=True), x_test / x_test.norm(dim=1, keepdim=True)
    mean = x.mean(0)
    return x - mean, x_test - mean


def run(args: Any) -> dict[str, Any]:
    """{labels per class: [per-seed accuracies of activation learning, its random weights, the MLP]}."""
    d = np.load(DATA / args.data)
    x_all, x_test = inputs(d, args.inputs)
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
    return results


def few_label_table(results: dict[str, Any], args: Any) -> str:
    columns = ["labels / class", "activation learning", "same, random weights", "backprop MLP", "AL - MLP (± SE)"]
    body = [{"labels / class": n, "activation learning": mean_sd([r["activation"] for r in runs]),
             "same, random weights": mean_sd([r["activation_random"] for r in runs]),
             "backprop MLP": mean_sd([r["mlp"] for r in runs]),
             "AL - MLP (± SE)": mean_se([r["activation"] - r["mlp"] for r in runs])}
            for n, runs in results.items()]
    return (f"zhou_few_labels: {args.data}, {args.inputs} inputs, hidden {args.hidden}, lr {args.lr}, {args.steps} steps of batch "
            f"{args.batch}, {args.seeds} seeds, test on the 1000 test images; {machine()['summary']}\n"
            + table(body, columns, style="markdown"))


def main() -> None:
    p = arguments(__doc__, "zhou_few_labels")
    p.add_argument("--data", default="mnist5k.npz")
    p.add_argument("--labels", type=int, nargs="*", default=[1, 5, 10, 50], help="labelled images per class")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="activation learning rate (SGD; default 0.2 for unit inputs, 0.002 for centred ones of mean "
                        "norm 7.2: the rule's time scale is lr |x|^2)")
    p.add_argument("--code-scale", type=float, default=1.0, help="label code size, in mean image norms")
    p.add_argument("--big", action="store_true", help="5 seeds and 100 labels per class too")
    p.add_argument("--inputs", choices=["unit", "centred"], default="unit",
                   help="unit: each image scaled to unit length (Zhou); centred: minus the training mean")
    args = parse(p)
    if args.big:
        args.seeds, args.labels = 5, sorted(set(args.labels) | {100})
    if args.lr is None:
        args.lr = 0.2 if args.inputs == "unit" else 0.002
    results = run(args)
    print("\n" + few_label_table(results, args))
    write_json(args.json, args, results=results)


if __name__ == "__main__":
    main()
