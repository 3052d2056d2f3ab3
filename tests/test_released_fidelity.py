"""The Hebbian family against my own float64 transcriptions of the released computations, on identical
weights and inputs (relative difference <= 1e-12):

- SoftHebb: NeuromorphicComputing/SoftHebb @ f4252307633ba38a26ab52504f5fd40352f5a6fd, demo.py
  (SoftHebbConv2d.forward, DeepSoftHebb, Triangle, WeightNormDependentLR, TensorLRSGD);
- Miconi: ThomasMiconi/HebbianCNNPyTorch @ 53a1cad4ae704f7331c429d3044e97127e834b73, HebbGrad_Github.ipynb
  (the ZCA cell and the training loop: k-WTA with thresholds, BINARIZEDPLAST, USETRIANGLE, MUTHRES, NORMW,
  PROBAMASKS, per-image normalisation);
- SPHeRe: brain-intelligence-lab/SPHeRe @ 7f3414e9d897a4f3d789e9ad012f4ce6537cd92c, main.py (HebbLayer, CNN);
- activation learning with Zhou's unit-length inputs (no released code; REFERENCES.md).

The transcriptions are written independently of the library (explicit loops over units and patches, numpy
linear algebra) and never call its functions.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.agent import LayerAgent, make_optimizer
from agents.layers import PRESETS, Layer, calibrate
from agents.rules.activation import ActivationLearning
from agents.rules.hebbian import HebbianOptions, Instar, SoftHebb, SoftHebbOptions
from agents.rules.sphere import Sphere, SphereOptions
from saccade_sim.config import LayerSpec, NoOptions
from saccade_sim.events import Glimpse
from saccade_sim.whitening import fit_image_zca, whiten_images

F64 = torch.float64
TOL = 1e-12


def rel(a, b) -> float:
    """max |a - b| / max |b|."""
    a, b = torch.as_tensor(a, dtype=F64).detach(), torch.as_tensor(b, dtype=F64).detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def glimpse(x: torch.Tensor) -> Glimpse:
    b = len(x)
    return Glimpse(index=0, time=0.0, data=x, gaze=torch.zeros(b, 2), stimulus=torch.arange(b),
                   label=torch.zeros(b, dtype=torch.long), modulator=torch.ones(b))


def agent_for(layer: Layer, rule, lr: float, optimizer: str = "sgd", weight_decay: float = 0.0) -> LayerAgent:
    params = list(layer.parameters()) + list(rule.parameters())
    return LayerAgent("l", layer, rule, make_optimizer(params, optimizer, lr, weight_decay))


# ------------------------------------------------------------------------------------------------ SoftHebb
def softhebb_reference_step(w, x, running, t_invert, lr0, kernel, pad):
    """One unsupervised step of demo.py's block on a batch x [B, C, H, W] (float64 numpy/loops):
    BatchNorm2d(affine=False) in training mode -> reflect pad -> u = conv(w) -> y = softmax(t_invert u) over
    channels, -y for every non-winner -> dw = sum y x_patch - (sum y u) w, / (max |dw| + 1e-30) ->
    w += lr0 (| |w_j| - 1 | + 1e-10)^0.5 dw (TensorLRSGD with lr = -lr0, the scheduler's lr from the current
    weights). Returns the new weights and running statistics."""
    w, x = w.numpy().copy(), x.numpy()
    b, c, h, wd = x.shape
    mean = x.mean(axis=(0, 2, 3))
    var_biased = x.var(axis=(0, 2, 3))
    n = b * h * wd
    xn = (x - mean[None, :, None, None]) / np.sqrt(var_biased[None, :, None, None] + 1e-5)
    rm, rv = running
    running = (0.9 * rm + 0.1 * mean, 0.9 * rv + 0.1 * var_biased * n / (n - 1))
    xp = np.pad(xn, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    out_c = w.shape[0]
    oh, ow = xp.shape[2] - kernel + 1, xp.shape[3] - kernel + 1
    yx = np.zeros_like(w)
    yu = np.zeros(out_c)
    for bi in range(b):
        for i in range(oh):
            for j in range(ow):
                patch = xp[bi, :, i:i + kernel, j:j + kernel]
                u = np.array([(w[o] * patch).sum() for o in range(out_c)])
                e = np.exp(t_invert * u - (t_invert * u).max())
                y = -e / e.sum()
                y[u.argmax()] *= -1
                for o in range(out_c):
                    yx[o] += y[o] * patch
                    yu[o] += y[o] * u[o]
    dw = yx - yu[:, None, None, None] * w
    dw /= np.abs(dw).max() + 1e-30
    norms = np.sqrt((w.reshape(out_c, -1) ** 2).sum(1))
    lr = lr0 * (np.abs(norms - 1) + 1e-10) ** 0.5
    return torch.from_numpy(w + lr[:, None, None, None] * dw), running


@pytest.mark.parametrize("block", [0, 1])
def test_softhebb_block_and_update_equal_demo_py(block):
    """Three events of the softhebb rule on the first / second block of the softhebb preset (channels
    reduced): weights (hence the update, its max-normalisation and the norm-dependent lr) and the BatchNorm
    running statistics equal demo.py's computation."""
    spec = PRESETS["softhebb"][block]
    in_c = 3 if block == 0 else 6
    from dataclasses import replace
    spec = replace(spec, channels=5)
    torch.manual_seed(0)
    layer = Layer(spec, (in_c, 7, 7), "l", channels_last=False).double()
    t_invert, lr0 = (1.0, 0.08) if block == 0 else (0.65, 0.005)
    rule = SoftHebb(layer, SoftHebbOptions(temperature=1 / t_invert), 0, 1)
    agent = agent_for(layer, rule, lr0)
    g = torch.Generator().manual_seed(1)
    w = layer.weight.detach().clone()
    assert 15 < float(w.flatten(1).norm(dim=1).mean()) < 35  # N(0, 25^2 / fan_in): norm ~25
    running = (layer.input_mean.clone().numpy(), layer.input_var.clone().numpy())
    worst = 0.0
    for _ in range(3):
        x = torch.rand(4, in_c, 7, 7, dtype=F64, generator=g) * 2 + 0.5
        agent.step(glimpse(x))
        w, running = softhebb_reference_step(w, x, running, t_invert, lr0, spec.kernel, spec.kernel // 2)
        worst = max(worst, rel(layer.weight.detach(), w), rel(layer.input_mean, running[0]),
                    rel(layer.input_var, running[1]))
    assert worst <= TOL, worst


def test_softhebb_block_output_equals_deepsofthebb_forward():
    """What a softhebb block transmits outside learning: BatchNorm with its running statistics, reflect pad,
    conv, Triangle(power), MaxPool(4, 2, 1) (blocks 1-2) / AvgPool(2, 2) (block 3)."""
    torch.manual_seed(0)
    from dataclasses import replace
    worst = 0.0
    for block, in_c in ((0, 3), (1, 4), (2, 4)):
        spec = replace(PRESETS["softhebb"][block], channels=6)
        layer = Layer(spec, (in_c, 8, 8), "l", channels_last=False).double()
        g = torch.Generator().manual_seed(block)
        layer.input_mean.copy_(torch.randn(in_c, dtype=F64, generator=g))
        layer.input_var.copy_(torch.rand(in_c, dtype=F64, generator=g) + 0.5)
        x = torch.randn(3, in_c, 8, 8, dtype=F64, generator=g)
        out = layer.transmit(layer(x)[1])
        xs, w = x.numpy(), layer.weight.detach().numpy()
        xn = (xs - layer.input_mean.numpy()[None, :, None, None]) / np.sqrt(layer.input_var.numpy()[None, :, None, None] + 1e-5)
        pad = spec.kernel // 2
        xp = np.pad(xn, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
        k = spec.kernel
        u = np.zeros((3, 6, 8, 8))
        for i in range(8):
            for j in range(8):
                u[:, :, i, j] = np.einsum("bckl,ockl->bo", xp[:, :, i:i + k, j:j + k], w)
        tri = np.maximum(u - u.mean(1, keepdims=True), 0) ** spec.power
        if block < 2:  # MaxPool2d(4, 2, 1): -inf padding, windows 4 wide every 2
            padded = np.pad(tri, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
            ref = np.stack([np.stack([padded[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4].max((2, 3)) for j in range(4)], -1)
                            for i in range(4)], -2)
        else:
            ref = tri.reshape(3, 6, 4, 2, 4, 2).mean((3, 5))
        worst = max(worst, rel(out, ref))
    assert worst <= TOL, worst


def test_softhebb_update_decays_with_y_u_not_y_squared():
    """SoftHebb's decay is (sum y u) w: with Oja's (sum y^2) w the change differs (REFERENCES.md: 1.2 rel.)."""
    torch.manual_seed(0)
    spec = LayerSpec(kind="conv", channels=4, kernel=3, padding=0, init="normal", init_norm=25.0)
    layer = Layer(spec, (2, 5, 5), "l", channels_last=False).double()
    x = torch.randn(3, 2, 5, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    a = layer.potential(x)
    from agents.rules.hebbian import hebbian_delta
    from agents.rules.competition import soft_wta
    y = soft_wta(a, 1.0, True)
    soft = hebbian_delta("softhebb", layer, x, y, a, "sum")
    oja = hebbian_delta("oja", layer, x, y, a, "sum")
    assert rel(oja, soft) > 0.5


# -------------------------------------------------------------------------------------------------- Miconi
def miconi_reference_events(ws, masks, images, k, lrs, dense_output, mu=3.0, norm_eps=1e-10):
    """Learning events of HebbGrad_Github.ipynb's training loop (UNLAB, nbbatches > 200) on whitened images
    [B, C, H, W]: per layer, the input standardised per image; prelimy = conv(x, w) (valid); realy = prelimy
    - thres; every entry below the k-th largest over channels set to 0; BINARIZEDPLAST: realy = (realy > 0);
    the instar change sum_{b, pos} realy (x_patch - w) at learning rate lrs[l] (SGD on the summed loss), then
    w *= mask, w /= |w| (NORMW); the output: USETRIANGLE relu((prelimy - thres) - mean_c(...)) or realy;
    2x2 average pooling; thres += mu (mean_{b,pos}(realy > 0) - k / N). NORMW divides by ``norm_eps`` + |w|
    (the notebook's 1e-10). Returns weights, thresholds, and the last event's transmitted outputs."""
    ws = [w.numpy().copy() for w in ws]
    masks = [m.numpy() for m in masks]
    thres = [np.zeros(w.shape[0]) for w in ws]
    outs = []
    for x in images:
        x = x.numpy()
        outs = []
        for l, w in enumerate(ws):
            flat = x.reshape(len(x), -1)
            x = (x - flat.mean(1)[:, None, None, None]) / (1e-10 + flat.std(1, ddof=1)[:, None, None, None])
            n_out, _, kh, _ = w.shape
            oh, ow = x.shape[2] - kh + 1, x.shape[3] - kh + 1
            pre = np.zeros((len(x), n_out, oh, ow))
            for i in range(oh):
                for j in range(ow):
                    pre[:, :, i, j] = np.einsum("bckl,ockl->bo", x[:, :, i:i + kh, j:j + kh], w)
            real = pre - thres[l][None, :, None, None]
            kth = -np.sort(-real, axis=1)[:, k - 1:k]
            real = np.where(real < kth, 0.0, real)
            real = (real > 0).astype(np.float64)
            change = np.zeros_like(w)
            for o in range(n_out):
                for i in range(oh):
                    for j in range(ow):
                        yv = real[:, o, i, j]
                        if yv.any():
                            change[o] += np.einsum("b,bckl->ckl", yv, x[:, :, i:i + kh, j:j + kh] - w[o][None])
            w = (w + lrs[l] * change) * masks[l]
            w = w / (norm_eps + np.sqrt((w ** 2).sum((1, 2, 3), keepdims=True)))
            ws[l] = w
            if dense_output:
                out = pre - thres[l][None, :, None, None]
                out = np.maximum(out - out.mean(1, keepdims=True), 0)
            else:
                out = real
            x = out.reshape(len(x), n_out, oh // 2, 2, ow // 2, 2).mean((3, 5))
            outs.append(x)
            thres[l] = thres[l] + mu * (real.mean((0, 2, 3)) - k / n_out)
    return ws, thres, outs


@pytest.mark.parametrize("preset", ["miconi", "miconi_both"])
def test_miconi_net_equals_the_notebooks_training_loop(preset):
    """Two learning events of the miconi presets (channels reduced, pruning 50% so that the small layers keep
    connections) with the notebook's rule settings: binarised k-WTA winners over a - theta (K = 1), plasticity
    from those winners whatever the layer transmits, homeostasis from supra-threshold winners (MUTHRES 3),
    summed instar change, per-layer learning rates, the pruning mask and unit-norm weights, per-image
    standardisation of each layer's input, valid convolutions, the binary or dense (USETRIANGLE) output."""
    from dataclasses import replace
    dense = preset == "miconi_both"
    specs = [replace(s, channels=c, prune=0.5 if s.prune else 0.0) for s, c in zip(PRESETS[preset], (6, 5, 4))]
    torch.manual_seed(0)
    layers, shape = [], (3, 24, 24)
    for i, spec in enumerate(specs):
        layers.append(Layer(spec, shape, f"l{i}", channels_last=False).double())
        shape = layers[-1].out_shape
    lrs = [1e-2, 1e-2, 1e-1]  # the notebook's 1e-4 / 1e-4 / 1e-3, larger so that two events move the weights
    agents = []
    for layer, lr in zip(layers, lrs):
        options = HebbianOptions(competition="kwta", k=1, threshold_rate=3.0, kwta_post="binary", homeostasis="supra",
                                 reduction="sum")
        agents.append(agent_for(layer, Instar(layer, options, 0, 3), lr))
    ws = [l.weight.detach().clone() for l in layers]
    masks = [l.mask if l.mask is not None else torch.ones_like(l.weight) for l in layers]
    g = torch.Generator().manual_seed(3)
    images = [torch.randn(4, 3, 24, 24, dtype=F64, generator=g) for _ in range(2)]
    for x in images:
        out = glimpse(x)
        outs = []
        for agent in agents:
            out = agent.step(out)
            outs.append(out.data)
    def worst(reference):
        ref_w, ref_theta, ref_out = reference
        return max(max(rel(l.weight.detach(), w) for l, w in zip(layers, ref_w)),
                   max(rel(l.threshold, t) for l, t in zip(layers, ref_theta)),
                   max(rel(o, r) for o, r in zip(outs, ref_out)))

    # the library normalises by max(|w|, 1e-12): the same computation as the notebook's without its 1e-10 ...
    exact = worst(miconi_reference_events(ws, masks, images, 1, lrs, dense, norm_eps=0.0))
    assert exact <= TOL, exact
    # ... which alone moves unit-norm weights by ~1e-10 (relative) per normalisation
    assert worst(miconi_reference_events(ws, masks, images, 1, lrs, dense)) <= 3e-10
    assert all(float(l.threshold.abs().max()) > 0 for l in layers)


def test_whole_image_zca_equals_the_notebooks():
    """ZCA = 'IMAGE': each image standardised over its C H W entries, cov = T^T T / D + 1e-3 I (divided by D, as
    the notebook does), Z = E diag(ev^-1/2) E^T (numpy), every image standardised then multiplied by Z."""
    g = torch.Generator().manual_seed(0)
    store = torch.rand(50, 3, 4, 4, generator=g, dtype=F64) + torch.linspace(0, 1, 16, dtype=F64).view(1, 1, 4, 4)
    zca = fit_image_zca(store, 1e-3, 9000, torch.Generator().manual_seed(0))
    t = store.numpy().reshape(50, -1)
    t = (t - t.mean(1, keepdims=True)) / (1e-10 + t.std(1, ddof=1, keepdims=True))
    cov = t.T @ t / t.shape[1] + 1e-3 * np.eye(t.shape[1])
    ev, vec = np.linalg.eigh(cov)
    ref_z = vec @ np.diag(1 / np.sqrt(ev)) @ vec.T
    assert rel(zca, ref_z) <= TOL  # two eigensolvers (torch, numpy): 2e-13 measured at condition number 3e4
    assert rel(whiten_images(store, zca), (ref_z @ t.T).T.reshape(store.shape)) <= TOL


# -------------------------------------------------------------------------------------------------- SPHeRe
def sphere_reference_loss(params, x, lam=0.8):
    """HebbLayer.cal_loss of main.py on block = Conv2d(3x3, pad 1, bias) + BatchNorm2d (training) +
    LeakyReLU(0.2) + MaxPool2d(4, 2, 1), written with torch.nn.functional from the listed parameters:
    MSE(K(x), K(out_proj(y))) + lam MSE(K(out_proj(y)^T), I), K(z) = z z^T after row / (|row| + 1e-8 [|row| <= 0])."""
    w, b, gamma, beta, hw, hb, hgamma, hbeta, lw, lb = params
    y = F.conv2d(x, w, b, padding=1)
    mean, var = y.mean((0, 2, 3), keepdim=True), y.var((0, 2, 3), unbiased=False, keepdim=True)
    y = (y - mean) / torch.sqrt(var + 1e-5) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    y = F.max_pool2d(torch.where(y > 0, y, 0.2 * y), 4, 2, 1)
    h = F.conv2d(y, hw, hb)
    mean, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
    h = torch.relu((h - mean) / torch.sqrt(var + 1e-5) * hgamma.view(1, -1, 1, 1) + hbeta.view(1, -1, 1, 1))
    p = h.mean((2, 3)) @ lw.t() + lb

    def kernel(z):
        z = z.reshape(len(z), -1)
        n = z.norm(dim=1, keepdim=True)
        z = z / (n + 1e-8 * (n <= 0).to(z.dtype))
        return z @ z.t()

    structure = ((kernel(x) - kernel(p)) ** 2).mean()
    ortho = ((kernel(p.t()) - torch.eye(p.shape[1], dtype=p.dtype)) ** 2).mean()
    return structure + lam * ortho


def test_sphere_block_with_the_head_on_the_pooled_output_equals_hebblayer():
    """The sphere preset's first block (channels reduced) with ``pooled_head``: the written gradients of the
    conv weight and bias, the BatchNorm affine parameters and the head's parameters equal those of
    main.py's HebbLayer loss."""
    from dataclasses import replace
    torch.manual_seed(0)
    layer = Layer(replace(PRESETS["sphere"][0], channels=8), (3, 8, 8), "l", channels_last=False).double()
    rule = Sphere(layer, SphereOptions(out_dim=6, pooled_head=True), 0, 1).double()
    x = torch.randn(5, 3, 8, 8, dtype=F64, generator=torch.Generator().manual_seed(1))
    a, y = layer.respond(layer.prepare(x, True), True)
    from agents.rules.base import Factors
    rule.update(Factors(x, a, y, torch.ones(5), None))
    head = rule.head
    params = [layer.weight, layer.op.bias, layer.bn_weight, layer.bn_bias, head[0].weight, head[0].bias,
              head[1].weight, head[1].bias, head[5].weight, head[5].bias]
    written = [p.grad.clone() for p in params]
    leaves = [p.detach().clone().requires_grad_(True) for p in params]
    ref = torch.autograd.grad(sphere_reference_loss(leaves, x), leaves)
    # the biases of the two convolutions that a BatchNorm follows get no gradient (0 in exact arithmetic; both
    # sides round to ~1e-16): compared on the scale of the other gradients
    zero = (1, 5)
    assert max(rel(w, r) for i, (w, r) in enumerate(zip(written, ref)) if i not in zero) <= TOL
    scale = max(float(r.abs().max()) for r in ref)
    assert max(float((written[i] - ref[i]).abs().max()) for i in zero) <= TOL * scale


def test_sphere_third_block_transmits_its_input_as_hebblayer_res():
    """HebbLayer(res=True): y + AvgPool2d(2, 2)(x zero-padded from C_in to C_out channels)."""
    from dataclasses import replace
    torch.manual_seed(0)
    layer = Layer(replace(PRESETS["sphere"][2], channels=6), (4, 8, 8), "l", channels_last=False).double()
    x = torch.randn(2, 4, 8, 8, dtype=F64)
    pooled = layer.pool(layer(x)[1])
    ref = pooled.clone()
    for c in range(4):
        ref[:, c] += x[:, c].reshape(2, 4, 2, 4, 2).mean((2, 4))
    assert rel(layer.transmit(layer(x)[1], x), ref) <= TOL


# -------------------------------------------------------------------------------------- activation learning
def test_activation_learning_sees_unit_length_inputs():
    """input_norm = "unit": each input scaled to length 1 before the rule's dw_ij = y_j (x_i - sum_k w_ik y_k)."""
    torch.manual_seed(0)
    layer = Layer(LayerSpec(kind="dense", channels=4, activation="linear", input_norm="unit"), (1, 3, 3), "l",
                  channels_last=False).double()
    agent = agent_for(layer, ActivationLearning(layer, NoOptions(), 0, 1), 0.1)
    x = torch.randn(6, 1, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(1)) * 5
    w0 = layer.weight.detach().numpy().copy()
    agent.step(glimpse(x))
    xs = x.numpy().reshape(6, -1)
    xs = xs / np.sqrt((xs ** 2).sum(1, keepdims=True))
    change = np.zeros_like(w0)
    for b in range(6):
        y = w0 @ xs[b]
        for j in range(4):
            for i in range(9):
                change[j, i] += y[j] * (xs[b, i] - sum(w0[k, i] * y[k] for k in range(4)))
    assert rel(layer.weight.detach(), w0 + 0.1 * change / 6) <= TOL
