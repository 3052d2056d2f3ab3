"""Configuration: defaults, overrides, and errors that name the key and the valid choices."""
import pytest

from saccade_sim.config import load, parse_value, resolve
from saccade_sim.errors import ConfigError


def test_defaults_resolve_and_round_trip():
    cfg = resolve({})
    tree = cfg.to_dict()
    assert tree["rule"]["name"] == "clapp" and "offsets" in tree["rule"] and tree["eye"]["policy"] == "raster"
    assert tree["rule"]["lr"] == 2e-4 and resolve({"rule": {"name": "oja"}}).rule.lr == 0.01  # rule default_lr
    assert tree["rule"]["optimizer"] == "adam" and resolve({"rule": {"name": "oja"}}).rule.optimizer == "sgd"
    assert resolve({"rule": {"name": "oja", "lr": 0.3, "optimizer": "adamw"}}).rule.optimizer == "adamw"
    assert resolve({"rule": {"name": "oja", "lr": 0.3}}).rule.lr == 0.3
    assert resolve(tree).to_dict() == tree


@pytest.mark.parametrize("raw,match", [
    ({"bogus": 1}, "unknown key bogus; valid top-level keys"),
    ({"data": {"sorce": "x"}}, r"unknown key data.sorce; valid keys in \[data\]: modality, source"),
    ({"rule": {"name": "nope"}}, "rule.name: unknown rule 'nope'; valid choices: .*oja"),
    ({"rule": {"name": "oja", "forme": "loss"}}, r"unknown key rule.forme; valid keys in \[rule\] for name 'oja'"),
    ({"rule": {"timing": "other"}}, "rule.timing: unknown value 'other'; valid choices: immediate, deferred"),
    ({"eye": {"policy": "zigzag"}}, "eye.policy: unknown saccade policy 'zigzag'; valid choices: ior, random, raster, saliency, surprise"),
    ({"eye": {"batch": "8"}}, "eye.batch: expected int, got '8'"),
    ({"eye": {"jump_prob": 2}}, r"eye.jump_prob: must be in \[0, 1\]"),
    ({"data": {"modality": "smell"}}, "data.modality: unknown modality 'smell'"),
    ({"network": {"layers": [{"kind": "rnn"}]}}, r"network.layers\[0\].kind: unknown value 'rnn'"),
    ({"run": {"events": 0}}, "run.events: must be > 0"),
    ({"device": "tpu"}, "device: unknown value 'tpu'"),
    ({"glimpse": {"color": "sepia"}}, "glimpse.color: unknown value 'sepia'"),
    ({"probe": []}, "probe: expected a table"),
])
def test_bad_configs_name_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        resolve(raw)


def test_set_overrides_parse_toml_literals(tmp_path):
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("oja") == "oja" and parse_value('"x y"') == "x y" and parse_value("[1, 2]") == [1, 2]
    path = tmp_path / "c.toml"
    path.write_text('seed = 3\n[rule]\nname = "instar"\n')
    cfg = load(path, ["rule.lr=0.5", "eye.batch=4", "glimpse.patch=8"])
    assert (cfg.seed, cfg.rule.name, cfg.rule.lr, cfg.eye.batch, cfg.glimpse.patch) == (3, "instar", 0.5, 4, 8)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nothere.toml: config file not found"):
        load(tmp_path / "nothere.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load(bad)
