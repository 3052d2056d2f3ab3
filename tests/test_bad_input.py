"""Bad input: every case fails with a documented error whose message names the file, key or value, and
leaves no output that looks complete (the run folder is not even created when the input is bad).

To cover a new modality, add its broken files to CORRUPT_FILES (the folder cases run for every entry)."""
import io as pyio
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from saccade_sim.cli import main
from conftest import data_path


def _png_bytes() -> bytes:
    buf = pyio.BytesIO()
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(buf, format="PNG")
    return buf.getvalue()


#: modality -> (file name, bytes, expected message fragment) of broken files
CORRUPT_FILES = {
    "image": [
        ("empty.png", b"", "cannot decode image"),
        ("garbage.png", b"this is not an image at all" * 10, "cannot decode image"),
        ("truncated.png", _png_bytes()[:120], "cannot decode image"),
    ],
}

TINY = ["--quiet", "--set", "run.events=3", "--set", "eye.batch=2", "--set", "network.preset=tiny",
        "--set", "probe.train=20", "--set", "probe.test=10"]


def run_cli(capsys, *args):
    rc = main(["run", *args])
    return rc, capsys.readouterr().err.strip()


def assert_refused(capsys, out, fragments, *args):
    rc, err = run_cli(capsys, *TINY, "--out", str(out), *args)
    assert rc == 2, err
    assert err.startswith("saccade-sim: error: ") and "\n" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (out / "results.json").exists()
    return err


def digits(*extra):
    return ["--set", f"data.source={data_path('digits8x8.npz')}", "--set", "glimpse.patch=4", *extra]


CONFIG_CASES = {
    "unknown top-level key": (["--set", "colour=1"], ["unknown key colour", "valid top-level keys"]),
    "unknown key in a table": (["--set", "rule.lrr=0.1"], ["unknown key rule.lrr", "lr"]),
    "unknown rule option": (["--set", "rule.name=oja", "--set", "rule.kk=2"], ["unknown key rule.kk", "competition"]),
    "unknown value": (["--set", "rule.optimizer=lbfgs"], ["rule.optimizer", "'lbfgs'", "sgd, adam, adamw"]),
    "unknown plugin": (["--set", "eye.policy=zigzag"], ["eye.policy", "'zigzag'", "raster"]),
    "wrong type (string for int)": (["--set", "eye.batch=many"], ["eye.batch: expected int", "'many'"]),
    "wrong type (float for int)": (["--set", "run.events=2.5"], ["run.events: expected int", "2.5"]),
    "wrong type (bool for int)": (["--set", "seed=true"], ["seed: expected int", "True"]),
    "negative value": (["--set", "eye.batch=-3"], ["eye.batch: must be > 0", "-3"]),
    "out-of-range probability": (["--set", "eye.jump_prob=1.5"], ["eye.jump_prob", "[0, 1]", "1.5"]),
    "patch larger than the stimulus": (digits("--set", "glimpse.patch=9"), ["glimpse.patch: 9", "8x8"]),
    "kernel larger than the glimpse": (digits("--set", "network.layers=[{kernel=9, padding=0}]"),
                                       ["network.layers[0]", "kernel 9"]),
    "conv after dense": (["--set", "network.layers=[{kind='dense'}, {kind='conv'}]"],
                         ["network.layers[1]", "conv layer needs [C, H, W]"]),
    "CUDA where there is none": (["--set", "device=cuda"], ["device: 'cuda'", "not available"]),
    "CUDA device index that does not exist": (["--set", "device=cuda:7"], ["device: 'cuda:7'"]),
    "malformed device": (["--set", "device=gpu"], ["device", "'gpu'", "cpu, cuda, cuda:N"]),
    "missing data file": (["--set", "data.source=/nonexistent/x.npz"], ["/nonexistent/x.npz", "not found"]),
    "checkpoint delays too long": (digits("--set", "network.layers=[{delay_ms=150}, {kind='dense', delay_ms=100}]",
                                          "--checkpoint-every", "2"), ["run.checkpoint_every", "delay_ms"]),
    # issue 19: values that used to crash, run as nonsense, or be misreported
    "NaN learning rate": (digits("--set", "rule.lr=nan"), ["rule.lr: must be a finite number", "nan"]),
    "NaN fixation": (digits("--set", "eye.fixation_ms=nan"), ["eye.fixation_ms: must be a finite number"]),
    "infinite fixation": (digits("--set", "eye.fixation_ms=inf"), ["eye.fixation_ms: must be a finite number", "inf"]),
    "NaN plugin option": (digits("--set", "rule.margin=nan"), ["rule.margin: must be a finite number"]),
    "zero probe batch": (digits("--set", "probe.batch=0"), ["probe.batch: must be > 0", "0"]),
    "negative probe batch": (digits("--set", "probe.batch=-1"), ["probe.batch: must be > 0", "-1"]),
    "negative probe.train": (digits("--set", "probe.train=-1"), ["probe.train: must be >= 0", "-1"]),
    "negative data.train_limit": (digits("--set", "data.train_limit=-1"), ["data.train_limit: must be >= 0"]),
    "negative glimpse.size": (digits("--set", "glimpse.size=-1"), ["glimpse.size: must be >= 0", "-1"]),
    "negative max_weight_norm": (digits("--set", "run.max_weight_norm=-1"), ["run.max_weight_norm: must be > 0"]),
    "NaN max_weight_norm": (digits("--set", "run.max_weight_norm=nan"), ["run.max_weight_norm: must be a finite"]),
    "negative threads": (digits("--threads", "-1"), ["run.threads: must be >= 0", "-1"]),
    "bad eye.shards word": (digits("--set", "eye.shards=many"), ["eye.shards: unknown value 'many'", "auto"]),
    "eye.shards of the wrong type": (digits("--set", "eye.shards=2.5"), ["eye.shards: expected int or str", "2.5"]),
    "bad label regex": (["--set", f"data.source={data_path('natural')}", "--set", "data.label_pattern=(["],
                        ["data.label_pattern: not a valid regular expression", "'(['"]),
    "monitor eye out of range": (digits("--set", 'record.monitors=[{target="eye", quantity="gaze", eyes=[5]}]'),
                                 ["record.monitors[0].eyes: eye 5 does not exist", "eye.batch is 2"]),
    "monitor name escaping the folder": (
        digits("--set", 'record.monitors=[{target="eye", quantity="gaze", name="../../escape"}]'),
        ["record.monitors[0].name: '../../escape' cannot be a file name"]),
    "torchvision module, not a dataset": (["--set", "data.source=tv:utils", "--set", "data.root=/tmp"],
                                          ["torchvision has no dataset class 'utils'"]),
    "torchvision FakeData": (["--set", "data.source=tv:FakeData", "--set", "data.root=/tmp"],
                             ["torchvision.datasets.FakeData is not a classification dataset with train/test parts"]),
    "torchvision ImageFolder": (["--set", "data.source=tv:ImageFolder", "--set", "data.root=/tmp"],
                                ["'tv:ImageFolder': for a folder of images", "set data.source to the folder's path"]),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_is_named(name, tmp_path, capsys):
    if name.startswith("CUDA") and torch.cuda.is_available() and name.endswith("none"):
        pytest.skip("CUDA is present here")
    args, fragments = CONFIG_CASES[name]
    assert_refused(capsys, tmp_path / "out", fragments, *args)
    assert not (tmp_path / "out").exists()


def test_bad_config_files_are_named(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rule\nname = 'oja'\n")
    rc, err = run_cli(capsys, str(bad), "--out", str(tmp_path / "o"))
    assert rc == 2 and "bad.toml: not valid TOML" in err
    rc, err = run_cli(capsys, str(tmp_path / "none.toml"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "none.toml: config file not found" in err
    bad.write_text("[eye]\nbatch = 'x'\n")
    rc, err = run_cli(capsys, str(bad), "--out", str(tmp_path / "o"))
    assert rc == 2 and "eye.batch: expected int, got 'x'" in err
    assert not (tmp_path / "o").exists()


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _x(n=20, dtype=np.uint8):
    return (np.arange(n * 64) % 200).reshape(n, 8, 8).astype(dtype)


NPZ_CASES = {
    "labels missing": (dict(x=_x()), ["missing array 'y'", "found: x"]),
    "images missing": (dict(y=np.zeros(20, np.int64)), ["missing array 'x'"]),
    "1-D stimuli": (dict(x=np.zeros(20, np.uint8), y=np.zeros(20, np.int64)), [":x: expected images", "(20,)"]),
    "5 channels": (dict(x=np.zeros((20, 8, 8, 5), np.uint8), y=np.zeros(20, np.int64)), ["(20, 8, 8, 5)"]),
    "complex dtype": (dict(x=_x().astype(np.complex64), y=np.zeros(20, np.int64)), ["dtype complex64"]),
    "int64 images": (dict(x=_x().astype(np.int64), y=np.zeros(20, np.int64)), ["dtype int64"]),
    "NaN pixels": (dict(x=np.full((20, 8, 8), np.nan, np.float32), y=np.zeros(20, np.int64)), [":x: contains NaN"]),
    "float labels": (dict(x=_x(), y=np.zeros(20, np.float32)), [":y: expected integer labels", "float32"]),
    "negative labels": (dict(x=_x(), y=-np.ones(20, np.int64)), [":y: labels must be >= 0", "-1"]),
    "2-D labels": (dict(x=_x(), y=np.zeros((20, 1), np.int64)), [":y: expected integer labels [N]", "(20, 1)"]),
    "length mismatch": (dict(x=_x(), y=np.zeros(19, np.int64)), ["x has 20 items but y has 19"]),
    "no stimuli": (dict(x=_x(0), y=np.zeros(0, np.int64)), [":x: no stimuli"]),
    "x_test without y_test": (dict(x=_x(), y=np.zeros(20, np.int64), x_test=_x()), ["'x_test' but no 'y_test'"]),
    "object array (pickle)": (dict(x=np.array([_x(1)[0], "s"], dtype=object), y=np.zeros(2, np.int64)),
                              ["not a readable .npz file"]),
    # issue 19
    "x_test of another image size": (dict(x=_x(), y=np.arange(20) % 2, x_test=np.zeros((4, 9, 9), np.uint8),
                                          y_test=np.zeros(4, np.int64)),
                                     ["x_test items have shape (9, 9) but x items (8, 8)"]),
    "classes shorter than the labels": (dict(x=_x(), y=np.arange(20) % 4, classes=np.array(["a", "b"])),
                                        [":classes: 2 names but the labels go up to 3"]),
    "0-d classes": (dict(x=_x(), y=np.arange(20) % 2, classes=np.array("ab")),
                    [":classes: expected one name per class [C], got shape ()"]),
    "one stimulus": (dict(x=_x(1), y=np.zeros(1, np.int64)), ["1 training and 0 test stimuli"]),
    "one class only": (dict(x=_x(5), y=np.full(5, 3)), ["every stimulus has label 3", "at least 2 classes"]),
    "three stimuli of three classes": (dict(x=_x(3), y=np.arange(3)), ["3 training and 0 test stimuli"]),
    "a label of 2**40": (dict(x=_x(), y=np.r_[2**40, np.zeros(19, np.int64)]),
                         [":y: label 1099511627776 is not a class index"]),
    "x_unlabelled of another image size": (dict(x=_x(), y=np.arange(20) % 2, x_unlabelled=np.zeros((4, 9, 9), np.uint8)),
                                           ["unlabelled stimuli have shape (1, 9, 9) but training stimuli (1, 8, 8)"]),
}


@pytest.mark.parametrize("name", sorted(NPZ_CASES))
def test_bad_npz_is_named(name, tmp_path, capsys):
    arrays, fragments = NPZ_CASES[name]
    path = _npz(tmp_path / "bad.npz", **arrays)
    assert_refused(capsys, tmp_path / "out", [str(path), *fragments], "--set", f"data.source={path}",
                   "--set", "glimpse.patch=4")
    assert not (tmp_path / "out").exists()


def test_a_npy_under_a_npz_name_is_named(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _x())
    path = (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    assert_refused(capsys, tmp_path / "out", [f"{path}: not a .npz archive of named arrays"],
                   "--set", f"data.source={path}")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"garbage"], ids=["empty", "truncated", "garbage"])
def test_corrupt_npz_file_is_named(content, tmp_path, capsys):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    assert_refused(capsys, tmp_path / "out", [f"{path}: not a readable .npz file"], "--set", f"data.source={path}")


@pytest.mark.parametrize("modality,name,content,fragment",
                         [(m, *case) for m, cases in CORRUPT_FILES.items() for case in cases])
def test_corrupt_file_in_a_folder_is_named(modality, name, content, fragment, tmp_path, capsys):
    folder = tmp_path / "data"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
    good = {"image": _png_bytes()}.get(modality)
    if good is not None:
        for label in ("a", "b"):
            for i in range(3):
                (folder / label / f"ok{i}.png").write_bytes(good)
    (folder / "b" / name).write_bytes(content)
    assert_refused(capsys, tmp_path / "out", [str(folder / "b" / name), fragment],
                   "--set", f"data.source={folder}", "--set", f"data.modality={modality}")


def test_empty_folder_is_named(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert_refused(capsys, tmp_path / "out", [str(tmp_path / "data"), "no image files"],
                   "--set", f"data.source={tmp_path / 'data'}")


def test_a_folder_holding_another_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"other": "run"}')
    rc, err = run_cli(capsys, *TINY, *digits(), "--out", str(out))
    assert rc == 2 and str(out) in err and "not empty" in err and "--overwrite" in err
    assert (out / "results.json").read_text() == '{"other": "run"}'  # untouched
    # --overwrite with input that then fails: the old results.json must not survive as if complete
    rc, _ = run_cli(capsys, *TINY, *digits("--set", "rule.name=hebb", "--set", "rule.normalize=false",
                                           "--set", "rule.lr=1e30"), "--out", str(out), "--overwrite")
    assert rc == 3 and not (out / "results.json").exists()
    rc, _ = run_cli(capsys, *TINY, *digits(), "--out", str(out), "--overwrite")
    assert rc == 0 and "other" not in json.loads((out / "results.json").read_text())  # the old run's key


class _Payload:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_checkpoint_is_refused_and_never_executed(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "config": {}, "evil": _Payload(marker)}, run / "checkpoint.pt")
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and f"{run / 'checkpoint.pt'}: refused to load" in err and "posix.system" in err
    assert not marker.exists()
    with open(run / "checkpoint.pt", "wb") as f:  # a bare pickle, not even a torch zip
        pickle.dump(_Payload(marker), f)
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and str(run / "checkpoint.pt") in err
    assert not marker.exists()


def test_bad_checkpoints_are_named(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and f"{run / 'checkpoint.pt'}: no checkpoint here" in err
    (run / "checkpoint.pt").write_bytes(b"\x00" * 100)
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and f"{run / 'checkpoint.pt'}: refused to load" in err
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a truncated zip
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and str(run / "checkpoint.pt") in err
    torch.save({"weights": torch.zeros(3)}, run / "checkpoint.pt")
    rc, err = run_cli(capsys, "--resume", str(run))
    assert rc == 2 and "not a saccade-sim checkpoint of format 1" in err
