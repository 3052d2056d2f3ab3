"""Reliability: a signal after the simulation loses no training, one writer per run folder, ``--overwrite``
clears every earlier output, unwritable outputs and bad run folders get one-line errors, and a kill at any
moment of the probe or the save leaves a complete or a resumable folder."""
import errno
import fnmatch
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from agents.agent import LayerAgent
from saccade_sim import io, plots, runfolder
from saccade_sim.cli import main
from saccade_sim.experiment import TIMING_FIELDS, Experiment
from conftest import ROOT, cli_process, data_path

RUN = ["--quiet", "--set", f"data.source={data_path('digits8x8.npz')}", "--set", "glimpse.patch=4",
       "--set", "network.preset=tiny", "--set", "eye.batch=4", "--set", "run.events=6",
       "--set", "probe.train=600", "--set", "probe.test=300"]


def science(out):
    r = json.loads((out / "results.json").read_text())
    return {k: v for k, v in r.items() if k not in TIMING_FIELDS}


def saved_event(out):
    return io.load_torch(out / "checkpoint.pt")["eye"]["event"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["run", *RUN, "--out", str(out)]) == 0
    return out


def signal_on_first_call(monkeypatch, owner, attr, sig):
    """Make the first call of ``owner.attr`` deliver ``sig`` to this process (a real signal, handled by
    the installed handler at once), then proceed."""
    original, calls = getattr(owner, attr), []

    def wrapped(*args, **kwargs):
        if not calls:
            calls.append(1)
            os.kill(os.getpid(), sig)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapped)


# -- signals after the simulation ---------------------------------------------------------------
@pytest.mark.parametrize("phase,sig", [("final checkpoint", signal.SIGINT), ("probe", signal.SIGTERM),
                                       ("probe", signal.SIGINT), ("save", signal.SIGTERM)])
def test_a_signal_after_the_simulation_loses_no_training(phase, sig, tmp_path, capsys, monkeypatch, reference):
    owner, attr = {"final checkpoint": (io, "save_torch"), "probe": (Experiment, "probe"),
                   "save": (plots, "learning_curve")}[phase]
    signal_on_first_call(monkeypatch, owner, attr, sig)
    out = tmp_path / "run"
    rc = main(["run", *RUN, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 128 + sig and "\n" not in err, err
    assert "simulation is complete (6 events)" in err and f"saccade-sim run --resume {out}" in err, err
    assert not (out / "results.json").exists() and saved_event(out) == 6
    monkeypatch.undo()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0  # probes and saves, simulates nothing
    assert science(out) == science(reference)


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    original, calls = LayerAgent.step, []

    def step(agent, glimpse):  # the 5th event: two Ctrl-C in a row, inside a SimPy process
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(agent, glimpse)

    monkeypatch.setattr(LayerAgent, "step", step)
    out = tmp_path / "run"
    rc = main(["run", *RUN, "--checkpoint-every", "2", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "stopped at once by a second signal (SIGINT) during event 5" in err, err
    assert f"the last good checkpoint ({out / 'checkpoint.pt'}, event 4) is kept" in err
    assert saved_event(out) == 4 and not (out / "results.json").exists()


def test_sigterm_outside_a_run_exits_143_with_a_message(tmp_path, capsys, monkeypatch):
    signal_on_first_call(monkeypatch, Experiment, "__init__", signal.SIGTERM)  # while building the experiment
    rc = main(["run", *RUN, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 143 and err == "saccade-sim: stopped by SIGTERM; no training was in progress (nothing to resume)"
    assert not (tmp_path / "run").exists()


# -- kills at random moments of the probe and the save -----------------------------------------------
def _wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.005)


def _kill_then_finish(out, sig, after, delay, capsys):
    """Start a run, send ``sig`` ``delay`` s after ``after`` appears in ``out``, then check the folder: a
    complete results.json, or a checkpoint that ``--resume`` finishes. Returns which it was."""
    proc = cli_process(["run", *RUN, "--out", out])
    _wait_for(out / after, proc)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if (out / "results.json").exists():
        return "complete"
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 128 + sig), err
    assert saved_event(out) == 6, err  # the simulation's end was checkpointed before the probe
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0, capsys.readouterr().err
    return "resumed"


def test_kills_during_the_probe_and_the_save_leave_a_complete_or_resumable_folder(tmp_path, capsys, reference):
    # checkpoint.pt appears as the probe starts (checkpoint_every = 0): kill half-way through a probe as long as
    # the reference run's; history.npz appears in the middle of the save (the plots come next)
    probe_s = json.loads((reference / "results.json").read_text())["probe_wall_s"]
    for i, (after, delay) in enumerate([("checkpoint.pt", probe_s / 2), ("history.npz", 0.0)]):
        out = tmp_path / f"kill{i}"
        assert _kill_then_finish(out, signal.SIGKILL, after, delay, capsys) == "resumed"
        assert science(out) == science(reference)


@pytest.mark.slow
def test_many_kills_and_signals_during_the_probe_and_the_save(tmp_path, capsys, reference):
    rng = random.Random(19)
    probe_s = json.loads((reference / "results.json").read_text())["probe_wall_s"]
    outcomes = []
    for i in range(24):
        sig = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)[i % 3]
        out = tmp_path / f"kill{i}"
        after = "history.npz" if i % 4 == 3 else "checkpoint.pt"
        delay = rng.uniform(0, 0.3 if after == "history.npz" else 1.5 * probe_s)
        outcomes.append(_kill_then_finish(out, sig, after, delay, capsys))
        assert science(out) == science(reference)
    assert "resumed" in outcomes


# -- one writer per run folder --------------------------------------------------------------------
LONG = [*RUN, "--set", "run.events=1000000", "--checkpoint-every", "5", "--set", "probe.train=60",
        "--set", "probe.test=30"]


def test_a_second_writer_is_refused_at_once_and_the_lock_goes_with_a_killed_writer(tmp_path, capsys):
    out = tmp_path / "run"
    first = cli_process(["run", *LONG, "--out", out])
    try:
        _wait_for(out / "checkpoint.pt", first)
        for args in (["run", "--resume", str(out)], ["run", *RUN, "--out", str(out), "--overwrite"],
                     ["analyze", str(out)]):
            assert main(args) == 2, args
            err = capsys.readouterr().err.strip()
            assert f"{out}: another saccade-sim process (pid {first.pid} on " in err and "\n" not in err, err
        assert first.poll() is None  # untouched
    finally:
        first.kill()
        first.communicate()
    event = saved_event(out)
    assert main(["run", "--resume", str(out), "--quiet", "--set", f"run.events={event + 2}"]) == 0
    assert json.loads((out / "results.json").read_text())["events"] == event + 2


def test_a_lock_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    probe = ("import sys; from saccade_sim import runfolder\n"
             "try:\n    with runfolder.lock(sys.argv[1]): print('got it')\n"
             "except runfolder.FolderBusyError as e: print('busy:', e)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with runfolder.lock(tmp_path), runfolder.lock(tmp_path):
        other = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, env=env)
        assert other.stdout.startswith(f"busy: {tmp_path}: another saccade-sim process (pid {os.getpid()} on ")
    other = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, env=env)
    assert other.stdout.strip() == "got it", other.stderr


def test_concurrent_writers_of_one_file_never_share_a_temporary(tmp_path):
    path, barrier, errors = tmp_path / "results.json", threading.Barrier(2), []

    def writer(text):
        def write(p):
            p.write_text(text)
            barrier.wait(timeout=20)  # both temporaries exist before either is renamed
        try:
            io.atomic_write(path, write)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and path.read_text() in ("first", "second")
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


# -- --overwrite removes every earlier output -------------------------------------------------------
def test_overwrite_removes_every_output_of_the_earlier_run_and_every_output_is_listed(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *RUN, "--out", str(out), "--set", "probe.every_ms=600",
                 "--set", 'record.monitors=[{target="eye", quantity="gaze"}, '
                          '{target="layer1", quantity="activity"}]']) == 0
    assert main(["analyze", str(out), "--stimuli", "12", "--max-units", "2"]) == 0
    written = sorted(p.name for p in out.iterdir() if p.name != runfolder.LOCK)
    unlisted = [n for n in written if not any(fnmatch.fnmatch(n, pattern) for pattern in runfolder.OUTPUTS)]
    assert not unlisted, f"outputs missing from runfolder.OUTPUTS: {unlisted}"
    for name in ("decoding.json", "record_eye_gaze.npz", "analysis.json", "report.md", "similarity.png"):
        assert name in written
    (out / "notes.txt").write_text("mine")
    assert main(["run", *RUN, "--out", str(out), "--overwrite"]) == 0
    left = sorted(p.name for p in out.iterdir() if p.name != runfolder.LOCK)
    assert left == sorted(["config.json", "results.json", "checkpoint.pt", "history.npz", "learning_curve.png",
                           "notes.txt"])


# -- outputs that cannot be written ----------------------------------------------------------------
def _one_line_error(capsys, args, *fragments):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("saccade-sim: error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_an_out_folder_that_cannot_be_made_is_named(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    _one_line_error(capsys, ["run", *RUN, "--out", str(tmp_path / "afile" / "run")],
                    f"--out {tmp_path / 'afile' / 'run'}: {tmp_path / 'afile'} is a file, not a folder")
    _one_line_error(capsys, ["run", *RUN, "--out", "/proc/no-such-dir/run"], "/proc/no-such-dir/run")
    _one_line_error(capsys, ["run", str(tmp_path), "--out", str(tmp_path / "o")],
                    f"{tmp_path}: is a folder, not a config file")


def test_a_read_only_out_folder_is_named(tmp_path, capsys):
    folders = [Path("/proc/1")]  # procfs: no one may create files there, not even root
    if os.geteuid() != 0:  # root ignores permission bits
        folders.append(tmp_path / "ro")
        folders[-1].mkdir(mode=0o555)
    for ro in folders:
        _one_line_error(capsys, ["run", *RUN, "--out", str(ro / "run")],
                        f"--out {ro / 'run'}: {ro} is not writable (permission denied or a read-only file system)")


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))


def test_a_write_the_system_refuses_is_named_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    # a real refusal in another process: files are limited to 30 kB, the small preset's checkpoint is larger
    out = tmp_path / "run"
    proc = cli_process(["run", *RUN, "--set", "network.preset=small", "--out", out], preexec_fn=_limit_file_size)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    errors = [line for line in err.splitlines() if "error" in line]  # the rule may warn on stderr too
    assert errors == [f"saccade-sim: error: {out / 'checkpoint.pt'}: cannot write: File too large; "
                      "nothing was written"] and "Traceback" not in err, err
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.json"]  # no temporary left
    # a full disk at the second periodic checkpoint: the first one stays, and the run resumes from it
    real, calls = torch.save, []

    def full_disk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "full"
    _one_line_error(capsys, ["run", *RUN, "--checkpoint-every", "2", "--out", str(out)],
                    f"{out / 'checkpoint.pt'}: cannot write: No space left on device; the previous file is kept")
    monkeypatch.undo()
    assert saved_event(out) == 2
    assert main(["run", "--resume", str(out), "--quiet"]) == 0


# -- run folders that analyze and resume refuse ----------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", *RUN, "--set", "probe.train=60", "--set", "probe.test=30", "--out", str(out)]) == 0
    return out


def test_analyze_names_bad_folders_and_arguments(finished, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(finished, bad)
    (bad / "config.json").write_text("{not json")
    _one_line_error(capsys, ["analyze", str(bad)], f"{bad / 'config.json'}: not a readable configuration")
    shutil.copy(finished / "config.json", bad / "config.json")
    other = tmp_path / "other"
    assert main(["run", *RUN, "--set", "network.preset=small", "--set", "probe.enabled=false",
                 "--out", str(other)]) == 0
    shutil.copy(other / "checkpoint.pt", bad / "checkpoint.pt")
    _one_line_error(capsys, ["analyze", str(bad)], f"{bad / 'checkpoint.pt'}: does not fit the run's config.json")
    for flag in ("--max-units", "--stimuli"):
        _one_line_error(capsys, ["analyze", str(finished), flag, "0"],
                        f"analyze {flag}: must be an integer >= 1, got 0")
    _one_line_error(capsys, ["analyze", str(tmp_path / "none")], f"analyze {tmp_path / 'none'}: no such run folder")


def test_analyze_says_when_a_run_is_unfinished(finished, tmp_path, capsys):
    run = tmp_path / "unfinished"
    shutil.copytree(finished, run)
    (run / "results.json").unlink()
    assert main(["analyze", str(run), "--stimuli", "12", "--max-units", "2"]) == 0
    err = capsys.readouterr().err
    assert f"note: {run} is an unfinished run (no results.json): analysed the weights at event 6 of 6" in err
    assert "**Unfinished run**: these are the weights at event 6 of 6" in (run / "report.md").read_text()
    assert json.loads((run / "analysis.json").read_text())["complete"] is False


def test_a_rejected_resume_changes_nothing_and_a_bad_checkpoint_is_not_called_good(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "results.json").unlink()
    before = {p.name: p.read_bytes() for p in runfolder.contents(run)}
    rc = main(["run", "--resume", str(run), "--set", "run.max_weight_norm=1e-9", "--set", "run.events=8"])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and "\n" not in err, err
    assert f"{run / 'checkpoint.pt'}: the saved weights already fail the divergence check" in err
    assert "last good" not in err
    assert {p.name: p.read_bytes() for p in runfolder.contents(run)} == before
    state = io.load_torch(run / "checkpoint.pt")  # weights saved non-finite (Experiment.save does not check)
    state["agents"][0]["layer"]["op.weight"][0] = float("nan")
    torch.save(state, run / "checkpoint.pt")
    rc = main(["run", "--resume", str(run)])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and "already fail the divergence check" in err and "non-finite weights" in err, err
    assert "last good" not in err
    (run / "checkpoint.pt").unlink()
    _one_line_error(capsys, ["run", "--resume", str(run)], f"{run / 'checkpoint.pt'}: no checkpoint here: the run in "
                    f"{run} ended before its first checkpoint", "--overwrite")
    _one_line_error(capsys, ["run", "--resume", str(tmp_path / "none")],
                    f"--resume {tmp_path / 'none'}: no such run folder")


# -- threads -------------------------------------------------------------------------------------
def test_threads_option_sets_torch_threads_and_is_recorded(tmp_path):
    assert torch.get_num_threads() == 2  # conftest
    assert main(["run", *RUN, "--set", "probe.enabled=false", "--threads", "1", "--out", str(tmp_path / "run")]) == 0
    assert torch.get_num_threads() == 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["run"]["threads"] == 1
