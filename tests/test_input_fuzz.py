"""Property: whatever a data file holds and whatever paths the CLI is given, ``saccade-sim`` either runs or
stops with one of its named errors as one line (exit 2, or 3 for a divergence), never with a traceback.

Data files: ``.npz`` archives of random arrays (shapes, dtypes, contents, keys), plausible image archives
with broken details, random bytes, and truncated copies of a good archive. Paths: ``--out`` under files,
in unwritable or over-long places, occupied folders; configs that are folders, bytes or random TOML;
``--resume`` and ``analyze`` of folders holding anything. The long loops are marked slow."""
import contextlib
import io as pyio
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from saccade_sim.cli import main
from conftest import data_path

TINY = ["--quiet", "--set", "run.events=2", "--set", "eye.batch=2", "--set", "network.preset=tiny",
        "--set", "probe.train=12", "--set", "probe.test=6", "--set", "glimpse.patch=2"]
DTYPES = [np.uint8, np.int8, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_, np.complex64]


def outcome(args):
    """Run the CLI; assert the outcome is allowed; return the exit status."""
    err = pyio.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(pyio.StringIO()):
        rc = main([str(a) for a in args])
    text = err.getvalue().strip()
    assert rc in (0, 2, 3), text
    if rc:
        assert text.startswith("saccade-sim: error: ") and "\n" not in text, text
    return rc


any_array = hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))


@st.composite
def image_archives(draw):
    """Mostly plausible image archives [N, H, W] with random flaws: values, label ranges, split shapes."""
    n, h, w = draw(st.integers(0, 12)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64]))
    x = draw(hnp.arrays(dtype, (n, h, w), elements=st.floats(-1e3, 1e3, width=32) if dtype != np.uint8 else None))
    if dtype != np.uint8 and n and draw(st.booleans()):
        x.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    arrays = {"x": x, "y": draw(hnp.arrays(np.int64, (draw(st.sampled_from([n, n, max(n - 1, 0)])),),
                                           elements=st.integers(-1, draw(st.sampled_from([3, 20, 2**40])))))}
    if draw(st.booleans()):
        m = draw(st.integers(0, 6))
        arrays["x_test"] = draw(hnp.arrays(np.uint8, (m, draw(st.sampled_from([h, h + 1])), w)))
        arrays["y_test"] = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, 4)))
    if draw(st.booleans()):
        arrays["classes"] = draw(st.one_of(st.just(np.array("ab")), hnp.arrays("U2", (draw(st.integers(0, 5)),))))
    return arrays


@st.composite
def random_archives(draw):
    keys = draw(st.lists(st.sampled_from(["x", "y", "x_test", "y_test", "classes", "other"]), unique=True, max_size=5))
    return {k: draw(any_array) for k in keys}


def good_archive_bytes() -> bytes:
    d = np.load(data_path("digits8x8.npz"))
    buf = pyio.BytesIO()
    np.savez(buf, x=d["x"][:40], y=d["y"][:40])
    return buf.getvalue()


GOOD = good_archive_bytes()
data_files = st.one_of(
    image_archives().map(lambda a: ("arrays", a)), random_archives().map(lambda a: ("arrays", a)),
    st.binary(max_size=600).map(lambda b: ("bytes", b)),
    st.integers(0, len(GOOD) - 1).map(lambda n: ("bytes", GOOD[:n])))


def check_data_file(kind_content):
    kind, content = kind_content
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        if kind == "arrays":
            np.savez(path, **content)
        else:
            path.write_bytes(content)
        outcome(["run", *TINY, "--set", f"data.source={path}", "--out", Path(tmp) / "out"])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data_files)
def test_any_data_file_runs_or_fails_with_a_named_error(kind_content):
    check_data_file(kind_content)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(data_files)
def test_any_data_file_runs_or_fails_with_a_named_error_long(kind_content):
    check_data_file(kind_content)


# -- paths ---------------------------------------------------------------------------------------
SEGMENTS = st.sampled_from(["run", "a b", "ü", ".", "full/../empty", "x" * 300, "afile", "full", "empty", "-dash"])
PLACES = st.sampled_from(["tmp", "/proc/1", "/proc/no-such"])
FOLDER_FILES = st.dictionaries(st.sampled_from(["checkpoint.pt", "config.json", "results.json", ".lock", "x.txt"]),
                               st.one_of(st.binary(max_size=64), st.just(b"{}"), st.just(b"[1]")), max_size=4)


@st.composite
def cli_calls(draw):
    """A command (run with --out, run CONFIG, run with a data.source, run --resume, analyze) over a random
    place and folder."""
    command = draw(st.sampled_from(["out", "config", "source", "resume", "analyze"]))
    return (command, draw(PLACES), draw(st.lists(SEGMENTS, min_size=1, max_size=3)), draw(FOLDER_FILES),
            draw(st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode))), draw(st.booleans()))


def check_cli_call(call):
    command, place, segments, files, config_bytes, overwrite = call
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "afile").write_text("a file in the way")
        (tmp / "full").mkdir()
        (tmp / "empty").mkdir()
        for name, content in files.items():
            (tmp / "full" / name).write_bytes(content)
        base = tmp if place == "tmp" else Path(place)
        target = base.joinpath(*segments)
        data = ["--set", f"data.source={data_path('digits8x8.npz')}"]
        if command == "out":
            args = ["run", *TINY, *data, "--out", target] + (["--overwrite"] if overwrite else [])
        elif command == "config":
            config = tmp / "c.toml"
            config.write_bytes(config_bytes)
            args = ["run", target if overwrite else config, *TINY, *data, "--out", tmp / "o"]
        elif command == "source":
            args = ["run", *TINY, "--set", f"data.source={target}", "--out", tmp / "o"]
        elif command == "resume":
            args = ["run", "--resume", target]
        else:
            args = ["analyze", target, "--stimuli", "4", "--max-units", "1"]
        outcome(args)
        assert not any(p.name.endswith(".tmp") for p in tmp.rglob("*") if p.is_file())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(cli_calls())
def test_any_cli_path_runs_or_fails_with_a_named_error(call):
    check_cli_call(call)


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(cli_calls())
def test_any_cli_path_runs_or_fails_with_a_named_error_long(call):
    check_cli_call(call)


def test_the_fuzz_reaches_success_and_failure():
    """The strategies are not all-failing: a good archive runs, a truncated one is refused."""
    check_data_file(("bytes", GOOD))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.npz"
        path.write_bytes(GOOD[: len(GOOD) // 2])
        assert outcome(["run", *TINY, "--set", f"data.source={path}", "--out", Path(tmp) / "o"]) == 2
        path.write_bytes(GOOD)
        assert outcome(["run", *TINY, "--set", f"data.source={path}", "--out", Path(tmp) / "o"]) == 0
