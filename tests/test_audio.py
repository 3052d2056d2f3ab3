"""Audio modality: waveform handling, the log-mel formula, glimpse geometry, bad inputs, speaker hold-out,
and the CLI end to end on the shared FSDD recordings."""
import json

import numpy as np
import pytest
import soundfile
import torch

from conftest import data_path
from saccade_sim.cli import main
from saccade_sim.config import resolve
from saccade_sim.errors import ConfigError, DataError
from saccade_sim.experiment import Experiment
from saccade_sim.modalities.audio import AudioModality, AudioOptions, fit_length, log_mel, to_mono
from saccade_sim.modalities.base import RawStimuli

SPEAKER = "^[^_]+_([^_]+)_"


def test_fit_length_crops_and_pads_centred_or_at_start():
    w = np.arange(1, 11, dtype=np.float32)
    assert fit_length(w, 4, "center").tolist() == [4, 5, 6, 7]
    assert fit_length(w, 4, "start").tolist() == [1, 2, 3, 4]
    assert fit_length(w[:3], 7, "center").tolist() == [0, 0, 1, 2, 3, 0, 0]
    assert fit_length(w[:3], 5, "start").tolist() == [1, 2, 3, 0, 0]


def test_to_mono_mixes_channels_scales_int16_and_resamples():
    stereo = np.stack([np.full(800, 16384, np.int16), np.zeros(800, np.int16)], 1)
    mono = to_mono(stereo, 8000, 8000)
    assert mono.shape == (800,) and np.allclose(mono, 0.25)
    t = np.arange(8000) / 8000
    up = to_mono(np.sin(2 * np.pi * 440 * t).astype(np.float32), 8000, 16000)
    assert up.shape == (16000,)
    assert np.abs(np.fft.rfft(up)).argmax() == 440  # 1 s at 16 kHz: bin k = k Hz


def test_log_mel_equals_an_explicit_stft_and_filterbank():
    import torchaudio.functional as AF

    o = AudioOptions(n_fft=64, hop=16, n_mels=8)
    wave = torch.randn(2, 400, generator=torch.Generator().manual_seed(0))
    got = log_mel(wave, o)
    x = np.pad(wave.double().numpy(), ((0, 0), (32, 32)), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)  # periodic Hann
    frames = np.stack([x[:, i:i + 64] for i in range(0, x.shape[1] - 64 + 1, 16)], 1)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # [N, T, 33]
    fb = AF.melscale_fbanks(33, 0.0, 4000.0, 8, 8000).double().numpy()  # [33, 8]
    want = np.log(np.einsum("ntf,fm->nmt", power, fb) + 1e-6)
    assert got.shape == (2, 1, 8, frames.shape[1])
    assert np.allclose(got[:, 0].double().numpy(), want, atol=1e-4)


def spectrogram_store(n=3, mels=12, frames=50):
    return torch.arange(n * mels * frames, dtype=torch.float32).view(n, 1, mels, frames)


@pytest.mark.parametrize("bands,stride", [(0, 0), (0, 10), (4, 5)])
def test_glimpses_are_time_windows_in_time_order_and_in_bounds(bands, stride):
    store = spectrogram_store()
    m = AudioModality(AudioOptions(n_mels=12, frames=10, stride=stride, bands=bands), tuple(store.shape[1:]))
    h = bands or 12
    grid = m.space.grid
    assert m.glimpse_shape == (1, h, 10)
    assert (grid >= 0).all() and (grid <= m.space.high).all() and m.space.high.tolist() == [12 - h, 40]
    assert grid[:, 1].max() == 40  # the window reaches the clip's end
    for band in grid[:, 0].unique():  # time runs forward along each band
        t = grid[grid[:, 0] == band, 1]
        assert (t.diff() > 0).all() and t[0] == 0
    idx = torch.tensor([2, 0, 1])
    gaze = grid[torch.tensor([0, len(grid) - 1, len(grid) // 2])]
    out = m.cut(store, idx, gaze)
    assert out.shape == (3, 1, h, 10)
    for b in range(3):
        f, t = gaze[b].tolist()
        assert torch.equal(out[b, 0], store[idx[b], 0, f:f + h, t:t + 10])


def test_a_window_longer_than_the_clip_and_bad_options_are_named():
    with pytest.raises(ConfigError, match="glimpse.frames: 200 frames is longer than the clips"):
        AudioModality(AudioOptions(frames=200), (1, 40, 101))
    with pytest.raises(ConfigError, match="glimpse.short: unknown value 'cut'; valid choices: pad, error"):
        resolve({"data": {"modality": "audio"}, "glimpse": {"short": "cut"}})
    with pytest.raises(ConfigError, match="data.test_groups: needs data.group_pattern"):
        resolve({"data": {"modality": "audio", "test_groups": ["theo"]}})


def test_short_clips_are_padded_or_named_by_config():
    raw = RawStimuli([np.ones(9000, np.float32), np.ones(100, np.float32)], np.array([0, 1]),
                     names=["long.wav", "short.wav"])
    store = AudioModality.prepare(raw, AudioOptions())
    assert store.shape == (2, 1, 40, 101)
    with pytest.raises(DataError, match=r"short.wav: 0.013 s is shorter than glimpse.duration \(1.0 s\)"):
        AudioModality.prepare(raw, AudioOptions(short="error"))


def test_empty_and_corrupt_wav_files_are_named(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    with pytest.raises(DataError, match="empty.wav: empty audio file"):
        AudioModality.load_file(tmp_path / "empty.wav", AudioOptions())
    with pytest.raises(DataError, match="corrupt.wav: cannot decode audio"):
        AudioModality.load_file(tmp_path / "corrupt.wav", AudioOptions())


def test_npz_waveforms_and_wrong_shapes(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((20, 6000)) * 3000).astype(np.int16)
    np.savez(tmp_path / "w.npz", x=x, y=np.arange(20) % 2)
    exp = Experiment({"data": {"modality": "audio", "source": str(tmp_path / "w.npz")},
                      "glimpse": {"duration": 0.5, "frames": 25, "stride": 25}, "network": {"preset": "tiny"},
                      "rule": {"offsets": [1]}})
    assert exp.train_store.shape[1:] == (1, 40, 51) and exp.modality.space.size == 2
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 3, 4, 5), np.int16), y=np.arange(2))
    with pytest.raises(DataError, match=r"bad.npz:x: expected waveforms \[N, samples\]"):
        Experiment({"data": {"modality": "audio", "source": str(tmp_path / "bad.npz")}})


def test_speakers_held_out_by_name_or_by_fraction(tmp_path):
    for label in "01":
        for speaker in ("ann", "bob", "cy"):
            for take in range(2):
                soundfile.write(tmp_path / f"{label}_{speaker}_{take}.wav", np.zeros(800, np.int16), 8000)
    base = {"modality": "audio", "source": str(tmp_path), "group_pattern": SPEAKER}
    exp = Experiment({"data": {**base, "test_groups": ["bob"]}, "glimpse": {"frames": 8}, "network": {"preset": "tiny"}})
    assert set(exp.split.test.groups) == {"bob"} and set(exp.split.train.groups) == {"ann", "cy"}
    assert exp.split.classes == ["0", "1"] and sorted(exp.split.test.y) == [0, 0, 1, 1]
    exp = Experiment({"data": {**base, "test_fraction": 0.3}, "glimpse": {"frames": 8}, "network": {"preset": "tiny"}})
    assert len(set(exp.split.test.groups)) == 1 and not set(exp.split.test.groups) & set(exp.split.train.groups)
    with pytest.raises(ConfigError, match="data.test_groups: unknown group 'zed'; groups found .*: ann, bob, cy"):
        Experiment({"data": {**base, "test_groups": ["zed"]}})


def test_cli_on_fsdd_with_a_speaker_the_probe_never_saw(tmp_path, capsys):
    out = tmp_path / "fsdd"
    rc = main(["run", "--quiet", "--out", str(out), "--set", "data.modality=audio",
               "--set", f"data.source={data_path('fsdd')}", "--set", f"data.group_pattern={SPEAKER}",
               "--set", 'data.test_groups=["nicolas"]', "--set", "data.train_limit=100", "--set", "data.test_limit=60",
               "--set", "glimpse.frames=32", "--set", "glimpse.stride=32", "--set", "network.preset=tiny",
               "--set", "rule.name=instar", "--set", "run.events=20", "--set", "eye.batch=8"])
    stdout = capsys.readouterr().out
    assert rc == 0 and "input (raw glimpses)" in stdout and "layer1" in stdout
    r = json.loads((out / "results.json").read_text())
    assert r["modality"] == "audio" and r["probe"]["n_test"] == 60 and r["probe"]["chance"] == 0.1
    assert r["probe"]["baselines"]["input"] > 0.2  # spoken digits of an unseen speaker, well above chance
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["test_groups"] == ["nicolas"] and cfg["glimpse"]["n_mels"] == 40


def test_torchaudio_speech_commands_by_name_uses_its_speaker_disjoint_lists(tmp_path):
    folder = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    for word in ("no", "yes"):
        (folder / word).mkdir(parents=True)
        for speaker in ("aa11", "bb22", "cc33"):
            soundfile.write(folder / word / f"{speaker}_nohash_0.wav", np.zeros(1600, np.int16), 16000)
    (folder / "testing_list.txt").write_text("no/cc33_nohash_0.wav\nyes/cc33_nohash_0.wav\n")
    (folder / "validation_list.txt").write_text("no/bb22_nohash_0.wav\n")
    cfg = {"data": {"modality": "audio", "source": "ta:SPEECHCOMMANDS", "root": str(tmp_path)},
           "glimpse": {"duration": 0.1, "frames": 8}, "network": {"preset": "tiny"}, "rule": {"offsets": [1]}}
    exp = Experiment(cfg)
    assert exp.split.classes == ["no", "yes"] and exp.train_store.shape == (3, 1, 40, 11)
    assert sorted(exp.split.train.groups) == ["aa11", "aa11", "bb22"] and set(exp.split.test.groups) == {"cc33"}
    assert sorted(exp.split.test.y) == [0, 1]
    with pytest.raises(DataError, match="torchaudio SPEECHCOMMANDS: .*set data.download = true"):
        Experiment({**cfg, "data": {**cfg["data"], "root": str(tmp_path / "nothing")}})
    with pytest.raises(ConfigError, match="unsupported torchaudio dataset 'YESNO'; valid choices: ta:SPEECHCOMMANDS"):
        Experiment({**cfg, "data": {**cfg["data"], "source": "ta:YESNO"}})


def test_torchaudio_librispeech_by_name_labels_utterances_by_speaker(tmp_path):
    for speaker in ("19", "26"):
        chapter = tmp_path / "LibriSpeech" / "dev-clean" / speaker / "100"
        chapter.mkdir(parents=True)
        lines = []
        for utt in range(5):
            soundfile.write(chapter / f"{speaker}-100-{utt:04d}.flac", np.zeros(1600, np.int16), 16000)
            lines.append(f"{speaker}-100-{utt:04d} SOME WORDS")
        (chapter / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
    exp = Experiment({"data": {"modality": "audio", "source": "ta:LIBRISPEECH/dev-clean", "root": str(tmp_path)},
                      "glimpse": {"duration": 0.1, "frames": 8}, "network": {"preset": "tiny"}, "rule": {"offsets": [1]}})
    assert exp.split.classes == ["19", "26"] and len(exp.split.train) == 8 and sorted(exp.split.test.y) == [0, 1]


def test_a_folder_is_read_only_for_the_stimuli_the_split_and_limits_keep(monkeypatch):
    import saccade_sim.datasets as datasets
    from saccade_sim.config import DataConfig

    read, real = [], datasets.load_file
    monkeypatch.setattr(datasets, "load_file", lambda m, f, o: read.append(str(f)) or real(m, f, o))
    cfg = DataConfig(modality="audio", source=str(data_path("fsdd")), train_limit=20, test_limit=10)
    split = datasets.load(cfg, AudioModality, AudioOptions(), seed=0)
    assert len(split.train) == 20 and len(split.test) == 10  # of 2500 files
    assert sorted(read) == sorted(split.train.names + split.test.names)
    assert all(isinstance(w, np.ndarray) and w.ndim == 1 for w in split.train.x)
    full = datasets.load(DataConfig(modality="audio", source=str(data_path("fsdd"))), AudioModality, AudioOptions(), 0)
    by_name = dict(zip(full.train.names, full.train.x))  # the same files, read the same way, as without limits
    assert all(np.array_equal(by_name[n], w) for n, w in zip(split.train.names, split.train.x))


def test_torchaudio_speech_commands_by_name_reads_only_the_limited_files(tmp_path, monkeypatch):
    """``ta:SPEECHCOMMANDS`` on the dataset's own layout (built here from the shared clips): its testing list
    is the test split (whole speakers), and only the files the limits keep are read."""
    import saccade_sim.audio_datasets as audio_datasets
    from saccade_sim import datasets
    from saccade_sim.config import DataConfig

    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    files = sorted(data_path("speech_commands").glob("*.wav"))
    held = sorted({f.stem.split("_")[1] for f in files})[:12]
    testing = []
    for f in files:
        word, speaker, rep = f.stem.split("_")
        (base / word).mkdir(parents=True, exist_ok=True)
        (base / word / f"{speaker}_nohash_{rep}.wav").symlink_to(f)
        if speaker in held:
            testing.append(f"{word}/{speaker}_nohash_{rep}.wav")
    (base / "testing_list.txt").write_text("\n".join(testing) + "\n")
    (base / "validation_list.txt").write_text("")
    read, real = [], audio_datasets.load_file
    monkeypatch.setattr(audio_datasets, "load_file", lambda m, f, o: read.append(f) or real(m, f, o))
    cfg = DataConfig(modality="audio", source="ta:SPEECHCOMMANDS", root=str(tmp_path), train_limit=30, test_limit=12)
    split = datasets.load(cfg, AudioModality, AudioOptions(), seed=0)
    assert len(split.train) == 30 and len(split.test) == 12 and sorted(read) == sorted(split.train.names + split.test.names)
    assert set(split.test.groups) <= set(held) and not set(split.train.groups) & set(held)
    assert split.classes == sorted({f.stem.split("_")[0] for f in files})
    assert all(w.ndim == 1 and len(w) == 8000 for w in split.train.x)  # 1 s at the modality's 8 kHz
