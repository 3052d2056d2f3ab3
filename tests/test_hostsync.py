"""No host-device synchronisation per event: ``Simulation.run`` of every registered rule, policy and modality
under the sync detector (saccade_sim.hostsync) syncs only in the divergence check every ``run.check_every``
events and copies to the device only once per block of eye draws (asynchronous eyes: once per event); a
planted sync is caught and located."""
import copy
import math
import re

import pytest
import torch

import saccade_sim.plugins  # noqa: F401  (registers the built-in plugins)
from conftest import data_path
from saccade_sim.asynchronous import CLOSED_LOOP, EVENT_COPY
from saccade_sim.closed_loop import SALIENCY_COPY
from saccade_sim.experiment import Experiment
from saccade_sim.hostsync import HostSyncError, SyncDetector, deliberate, host_side, optimizer_host_tensors
from saccade_sim.registry import MODALITIES, POLICIES, RULES

EVENTS, CHECK_EVERY, BLOCK = 23, 5, 4
#: a small network that uses every layer option that computes something per event
LAYERS = [{"channels": 4, "pool": 2, "center": 0.01}, {"channels": 6, "kwta": 2, "prune": 0.5}, {"kind": "dense", "channels": 8}]

#: one small real data set per modality: a modality registered without a case here fails the test below
MODALITY_CASES = {
    "image": lambda: {"data": {"source": str(data_path("mnist5k.npz")), "train_limit": 60, "test_limit": 20}},
    "audio": lambda: {"data": {"modality": "audio", "source": str(data_path("fsdd")), "train_limit": 30,
                               "test_limit": 10}, "glimpse": {"frames": 16}},
    "video": lambda: {"data": {"modality": "video", "source": str(data_path("moving_mnist.npz")), "train_limit": 30,
                               "test_limit": 10}, "glimpse": {"patch": 24, "stride": 24, "frame_stride": 8}},
}
#: option sets of a rule or policy beyond its defaults that take other code paths
VARIANTS = {
    "random": [{"free": False}, {"free": True}],
    "oja": [{}, {"competition": "kwta", "k": 2, "threshold_rate": 0.01}, {"competition": "soft", "anti_hebbian": True},
            {"form": "loss"}],
    "clapp": [{}, {"negatives": "jump", "sampling": "both"}, {"timing": "immediate", "retrograde": "shared_gate"}],
    "saliency": [{}, {"source": "layer1/activity", "mix": 0.3, "mix_with": "raster"}],
}
#: rules and policies that still synchronise per event (the locations are in the xfail reason); strict: the mark
#: must go once they are fixed
KNOWN: dict[str, str] = {}
#: the rule a policy runs with (default oja): one with a per-eye loss for the policy that reads it
POLICY_RULE = {"surprise": "clapp"}


def variants(name: str) -> list[dict]:
    return VARIANTS.get(name, [{}])


def cases() -> list:
    out = []
    for rule in RULES.names():
        for options in variants(rule):
            marks = [pytest.mark.xfail(reason=KNOWN[rule], raises=HostSyncError, strict=True)] if rule in KNOWN else []
            out.append(pytest.param("image", "random", {}, rule, options, None, marks=marks,
                                    id=f"rule-{rule}{options or ''}"))
    for policy in POLICIES.names():
        for options in variants(policy):
            marks = [pytest.mark.xfail(reason=KNOWN[policy], raises=HostSyncError, strict=True)] if policy in KNOWN else []
            out.append(pytest.param("image", policy, options, POLICY_RULE.get(policy, "oja"), {}, None, marks=marks,
                                    id=f"policy-{policy}{options or ''}"))
    for modality in MODALITIES.names():
        out.append(pytest.param(modality, "random", {"free": True}, "oja", {}, None, id=f"modality-{modality}"))
    out.append(pytest.param("image", "random", {}, "oja", {}, MONITORS, id="monitors"))
    out.append(pytest.param("image", "random", {}, "oja", {"optimizer": "adam", "schedule": {"kind": "cosine", "warmup": 3}},
                            None, id="adam-with-a-learning-rate-schedule"))
    return out


#: recordings of every quantity that needs no particular rule, sampled on the device
MONITORS = [{"target": "eye", "quantity": q, "eyes": [0, 2]} for q in ("glimpse", "gaze", "modulator", "stimulus")] + [
    {"target": "layer1", "quantity": "activity", "every": 2, "eyes": [1]},
    {"target": "layer2", "quantity": "weights", "every": 3}, {"target": "layer3", "quantity": "modulator"}]


def experiment(modality: str, policy: str, policy_options: dict, rule: str, rule_options: dict,
               monitors: list | None = None) -> Experiment:
    if modality not in MODALITY_CASES:
        pytest.fail(f"modality {modality!r} has no case in MODALITY_CASES: add a small data set for it")
    cfg = MODALITY_CASES[modality]()
    exp = Experiment({**cfg, "eye": {"batch": 6, "policy": policy, "jump_prob": 0.3, **policy_options},
                      "network": {"layers": LAYERS}, "rule": {"name": rule, **rule_options},
                      "run": {"progress": False, "check_every": CHECK_EVERY}, "probe": {"enabled": False},
                      "record": {"monitors": monitors or []}})
    exp.eye.block_events = BLOCK  # several blocks in the run
    return exp


def detector(exp: Experiment, strict: bool = True) -> SyncDetector:
    return SyncDetector(strict, host_tensors=lambda: optimizer_host_tensors(a.optimizer for a in exp.agents))


@pytest.mark.parametrize("modality, policy, policy_options, rule, rule_options, monitors", cases())
def test_a_run_syncs_only_at_its_checks_and_copies_once_per_block(modality, policy, policy_options, rule, rule_options,
                                                                  monitors):
    exp = experiment(modality, policy, policy_options, rule, rule_options, monitors)
    with detector(exp) as d:  # strict: raises at the first sync outside a deliberate section
        assert exp.simulation.run(EVENTS) == EVENTS
    sections = dict(d.sections)
    if policy == "saliency" and policy_options.get("source", "stimulus") == "stimulus":  # where some eyes jump
        assert 0 < sections.pop(SALIENCY_COPY) == d.count("copy", SALIENCY_COPY) < EVENTS
    assert sections == {"divergence check every run.check_every events": EVENTS // CHECK_EVERY,
                        "eye: one asynchronous copy per block of draws": math.ceil(EVENTS / BLOCK)}
    check = "divergence check every run.check_every events"
    assert d.count("sync", check) == len(exp.agents) * (EVENTS // CHECK_EVERY)  # one read per layer and check
    # the packed draws; the floats where there are some (the rules' uniform draws, a closed-loop policy's noise)
    per_block = 2 if exp.eye.draws.shape[1] or exp.eye.closed_loop else 1
    assert d.count("copy", "eye: one asynchronous copy per block of draws") == per_block * math.ceil(EVENTS / BLOCK)
    assert all(torch.isfinite(a.layer.weight).all() for a in exp.agents)
    assert all(m.buffer.count > 0 for m in exp.monitors)


@pytest.mark.parametrize("rule, rule_options, policy", [("oja", {}, "random"), ("clapp", {}, "random"),
                                                         ("clapp", {"timing": "immediate"}, "random"),
                                                         ("clapp", {}, "surprise")])
def test_asynchronous_eyes_sync_only_at_their_checks_and_copy_once_per_event(rule, rule_options, policy):
    """Gamma-timed eyes: the clock runs on the host (``host_side``); an event's rows go to the device in one copy
    of integers and one of floats; CLAPP's partial events (absent partners, rings full for some eyes) need no
    host index sets; a closed-loop policy's gazes come back to the host clock (the one wait per event that such
    eyes imply)."""
    exp = experiment("image", policy, {"motor": {"timing": "gamma"}}, rule, rule_options)
    with detector(exp) as d:
        assert exp.simulation.run(EVENTS) == EVENTS
    check = "divergence check every run.check_every events"
    assert set(d.sections) <= {check, EVENT_COPY, CLOSED_LOOP}
    assert d.sections[EVENT_COPY] == EVENTS and d.count("copy", EVENT_COPY) == 2 * EVENTS
    assert d.count("sync", check) == len(exp.agents) * (EVENTS // CHECK_EVERY)
    assert (d.sections.get(CLOSED_LOOP, 0) > 0) == (policy == "surprise")
    assert exp.eye.emitted > EVENTS and all(torch.isfinite(a.layer.weight).all() for a in exp.agents)


def test_clapp_knows_its_fixation_counts_on_the_host_and_reads_them_once_after_a_load():
    exp = experiment("image", "random", {}, "clapp", {})
    exp.simulation.run(3)
    rule = exp.agents[0].rule
    saved = copy.deepcopy(rule.state_dict())
    with detector(exp):  # strict: the steps made the counts, so no step reads them from the device
        exp.simulation.run(2)
    assert rule.seen_on_host(rule.seen).tolist() == rule.seen[0].tolist() == [5] * 6
    rule.load_state_dict(saved)  # in place: the memo of the counts before no longer holds
    with SyncDetector(strict=False) as d:
        counts = rule.seen_on_host(rule.seen)
        again = rule.seen_on_host(rule.seen)
    assert counts.tolist() == again.tolist() == [3] * 6
    assert [s.op for s in d.syncs] == ["Tensor.cpu", "Tensor.numpy"]  # one read (the second call: none)
    assert all("in seen_on_host" in s.where for s in d.syncs)


def plant_item(exp):
    rule = exp.agents[0].rule
    update = rule.update
    rule.update = lambda f: (f.modulator.sum().item(), update(f))[1]


def plant_mask(exp):
    rule = exp.agents[1].rule
    update = rule.update
    rule.update = lambda f: (f.a[f.a > 0], update(f))[1]


def plant_host_copy(exp):
    agent = exp.agents[0]
    step = agent.step
    agent.step = lambda g: step(g.with_data(g.data + torch.tensor([0.0], device=g.data.device)))


def plant_cpu(exp):
    rule = exp.agents[0].rule
    update = rule.update
    rule.update = lambda f: (f.pre.cpu(), update(f))[1]


@pytest.mark.parametrize("plant, op", [(plant_item, "item/float/int/bool"), (plant_mask, "boolean mask"),
                                       (plant_host_copy, "torch.tensor(host data"), (plant_cpu, "Tensor.cpu")])
def test_a_planted_sync_fails_the_run_and_names_its_line(plant, op):
    exp = experiment("image", "raster", {}, "oja", {})
    plant(exp)
    with pytest.raises(HostSyncError, match=rf"{re.escape(op)}.*at tests/test_hostsync\.py:\d+"):
        with detector(exp):
            exp.simulation.run(3)


def test_the_detector_records_without_raising_and_exempts_host_side_counters():
    x = torch.arange(4.0)
    step = torch.tensor(3.0)  # like torch.optim's step counter: host-side in a device run
    with SyncDetector(strict=False, host_tensors=lambda: [step]) as d:
        float(x.sum()), step.item(), x.tolist(), x[x > 1], torch.nonzero(x), x.to("cpu"), x.to(torch.float64)
        with deliberate("here"):
            bool(x[0])
        with host_side("a host clock"):  # host-resident by design: nothing recorded
            x.tolist(), x[x > 1], float(x.max())
    assert [(s.kind, s.section) for s in d.syncs] == [("sync", None), ("sync", None), ("sync", None), ("sync", None),
                                                      ("copy", None), ("sync", "here")]
    assert d.sections == {"here": 1} and all("test_hostsync.py" in s.where for s in d.syncs)
