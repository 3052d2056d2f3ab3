"""Bring your own data: a map-style torch Dataset from the Python API, and torchvision classes by name
(a supported one read offline from its own file format, unsupported ones named in the error)."""
import gzip
import json

import numpy as np
import pytest
import torch

import saccade_sim as ss
from saccade_sim.cli import main
from saccade_sim.errors import ConfigError, DataError
from conftest import data_path

RUN = {"network": {"preset": "tiny"}, "eye": {"batch": 8}, "run": {"events": 20, "progress": False},
       "probe": {"train": 120, "test": 60}}


class Digits(torch.utils.data.Dataset):
    """(tensor [1, 28, 28] in [0, 1], label) pairs, as torchvision's ToTensor gives them."""

    classes = [f"digit {d}" for d in range(10)]

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]).float()[None] / 255.0, int(self.y[i])


def digits():
    f = np.load(data_path("mnist5k.npz"))
    return f["x"][:600], f["y"][:600], f["x_test"][:200], f["y_test"][:200]


def test_a_torch_dataset_is_a_source_and_matches_the_same_arrays_as_npz(tmp_path):
    x, y, xt, yt = digits()
    exp = ss.Experiment(RUN, train=Digits(x, y), test=Digits(xt, yt))
    assert exp.config.data.source == "python:Digits" and exp.split.classes[3] == "digit 3"
    results = exp.run()
    np.savez(tmp_path / "same.npz", x=x, y=y, x_test=xt, y_test=yt)
    same = ss.Experiment({**RUN, "data": {"source": str(tmp_path / "same.npz")}}).run()
    assert results["probe"] == same["probe"]  # the same stimuli, whichever way they came in
    exp.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["source"] == "python:Digits"
    with pytest.raises(ConfigError, match="was a Dataset given in Python"):
        ss.Experiment(json.loads((tmp_path / "run" / "config.json").read_text()))


def test_without_a_test_dataset_a_stratified_part_is_held_out():
    x, y, _, _ = digits()
    exp = ss.Experiment({**RUN, "data": {"test_fraction": 0.25, "train_limit": 300}}, train=Digits(x, y))
    assert len(exp.train_labels) == 300 and abs(len(exp.test_labels) - 150) <= 5  # per-class rounding
    assert sorted(set(exp.test_labels.tolist())) == list(range(10))


def test_bad_datasets_are_named():
    with pytest.raises(ConfigError, match="map-style torch Dataset"):
        ss.Experiment(RUN, train=iter([]))

    class Strings(Digits):
        def __getitem__(self, i):
            return super().__getitem__(i)[0], "seven"

    x, y, _, _ = digits()
    with pytest.raises(DataError, match="train dataset: labels must be integers"):
        ss.Experiment(RUN, train=Strings(x, y))


def _idx(path, array):
    dims = array.shape
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_is_read_from_its_files_and_unusable_classes_are_named(tmp_path, capsys):
    x, y, xt, yt = digits()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y), ("t10k-images-idx3-ubyte", xt),
                    ("t10k-labels-idx1-ubyte", yt)):
        _idx(raw / name, a)
    exp = ss.Experiment({**RUN, "data": {"source": "tv:MNIST", "root": str(tmp_path)}})
    assert len(exp.train_labels) == 600 and exp.split.classes[0].startswith("0")
    assert torch.equal(exp.train_labels.cpu(), torch.from_numpy(y))
    for source, words in (("tv:ImageFolder", "set data.source to the folder"),
                          ("tv:FakeData", "not a classification dataset"),
                          ("tv:CocoDetection", "not a classification dataset"), ("tv:nothing", "has no dataset")):
        assert main(["run", "--set", f"data.source={source}", "--set", f"data.root={tmp_path}",
                     "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and source in err, err
