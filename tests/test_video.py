"""Video modality: frame-rate resampling, spatio-temporal glimpse geometry, bad inputs, clip segments,
and the CLI end to end on the shared Moving-MNIST clips and the unlabelled mp4 videos."""
import json

import numpy as np
import pytest
import torch

from conftest import data_path
from saccade_sim.cli import main
from saccade_sim.errors import ConfigError, DataError
from saccade_sim.experiment import Experiment
from saccade_sim.modalities.base import RawStimuli
from saccade_sim.modalities.video import VideoModality, VideoOptions, resample_frames


def test_resample_frames_picks_the_frame_shown_at_each_new_time():
    assert resample_frames(10, 30.0, 15.0).tolist() == [0, 2, 4, 6, 8]
    assert resample_frames(4, 25.0, 50.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert resample_frames(10, 30000 / 1001, 12.5).tolist() == [0, 2, 4, 7]  # frame k shown at k / 29.97 s


def coded_clips(n=2, c=3, t=8, h=12, w=14):
    return torch.arange(n * c * t * h * w, dtype=torch.float32).view(n, c, t, h, w)


def test_glimpses_are_spatio_temporal_boxes_with_time_folded_into_channels():
    store = coded_clips()
    m = VideoModality(VideoOptions(patch=6, stride=4, frames=3, frame_stride=2, clip_frames=8), tuple(store.shape[1:]))
    grid = m.space.grid
    assert m.glimpse_shape == (9, 6, 6) and m.space.high.tolist() == [5, 6, 8]
    assert (grid >= 0).all() and (grid <= m.space.high).all()
    assert (grid[:, 0].diff() >= 0).all()  # the raster advances with the clip's time
    assert grid[:, 0].unique().tolist() == [0, 2, 4] and grid[:, 1].unique().tolist() == [0, 4]
    idx = torch.tensor([1, 0])
    gaze = torch.tensor([[5, 6, 8], [0, 0, 0]])  # the far corner and the origin
    out = m.cut(store, idx, gaze)
    assert out.shape == (2, 9, 6, 6)
    for b in range(2):
        t, y, x = gaze[b].tolist()
        for dt in range(3):
            for ch in range(3):  # channel dt * C + ch = colour ch of frame dt
                assert torch.equal(out[b, dt * 3 + ch], store[idx[b], ch, t + dt, y:y + 6, x:x + 6])


def test_prepare_keeps_clip_frames_converts_colour_and_names_short_clips():
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8) for _ in range(2)]
    store = VideoModality.prepare(RawStimuli(clips, np.array([0, 1])), VideoOptions(clip_frames=6, color="gray"))
    assert store.shape == (2, 1, 6, 8, 8)
    want = (clips[1][4].astype(np.float32) / 255) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.allclose(store[1, 0, 4].numpy(), want, atol=1e-6)
    short = RawStimuli([clips[0], clips[1][:3]], np.array([0, 1]), names=["a.avi", "b.avi"])
    with pytest.raises(DataError, match=r"b.avi: 3 frames, fewer than glimpse.clip_frames \(6\)"):
        VideoModality.prepare(short, VideoOptions(clip_frames=6))
    with pytest.raises(ConfigError, match="glimpse.patch: 16 is larger than the frames"):
        VideoModality(VideoOptions(), (1, 16, 8, 8))
    with pytest.raises(ConfigError, match=r"glimpse.frames: 8 is more than glimpse.clip_frames \(4\)"):
        Experiment({"data": {"modality": "video"}, "glimpse": {"frames": 8, "clip_frames": 4}})


def test_decoding_files_resamples_and_names_bad_or_short_ones(tmp_path):
    clip = VideoModality.load_file(data_path("video/carphone_pristine.mp4"), VideoOptions(size=24, fps=10.0))
    assert clip.shape == (40, 24, 24, 3) and clip.dtype == np.uint8  # 120 frames at 29.97 fps = 4 s
    with pytest.raises(DataError, match=r"carphone_pristine.mp4: 40 frames at 10 fps, fewer than glimpse.clip_frames \(64\)"):
        VideoModality.load_file(data_path("video/carphone_pristine.mp4"), VideoOptions(size=24, fps=10.0, clip_frames=64))
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (tmp_path / "empty.avi").write_bytes(b"")
    for name in ("corrupt.mp4", "empty.avi"):
        with pytest.raises(DataError, match=f"{name}: cannot decode video"):
            VideoModality.load_file(tmp_path / name, VideoOptions())


def test_npz_clips_of_the_wrong_shape_are_named(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 16, 16), np.uint8), y=np.arange(4))
    with pytest.raises(DataError, match=r"bad.npz:x: expected clips \[N,T,H,W\]"):
        Experiment({"data": {"modality": "video", "source": str(tmp_path / "bad.npz")}})


def cli(out, *sets):
    args = ["run", "--quiet", "--out", str(out), "--set", "data.modality=video", "--set", "network.preset=tiny",
            "--set", "rule.name=oja", "--set", "run.events=20", "--set", "eye.batch=8"]
    for s in sets:
        args += ["--set", s]
    return main(args)


def test_cli_on_moving_mnist(tmp_path, capsys):
    rc = cli(tmp_path / "mm", f"data.source={data_path('moving_mnist.npz')}", "data.train_limit=100",
             "data.test_limit=50", "glimpse.patch=24", "glimpse.stride=24", "glimpse.frame_stride=8")
    assert rc == 0 and "layer1" in capsys.readouterr().out
    r = json.loads((tmp_path / "mm" / "results.json").read_text())
    assert r["modality"] == "video" and r["layers"]["layer1"] == [16, 24, 24]  # 4 frames x 1 channel in
    assert r["probe"]["n_train"] == 100 and r["probe"]["n_test"] == 50 and r["classes"] == [str(d) for d in range(10)]
    accs = [r["probe"]["baselines"]["input"], r["probe"]["layers"]["layer1"], r["probe"]["baselines"]["random"]["layer1"]]
    assert all(0.0 <= a <= 1.0 for a in accs)


def test_cli_on_unlabelled_videos_classifies_held_out_segments(tmp_path, capsys):
    rc = cli(tmp_path / "mp4", f"data.source={data_path('video')}", "glimpse.size=48", "glimpse.fps=10",
             "glimpse.clip_frames=8", "data.crop_size=32", "data.crops_per_photo=40", "data.test_fraction=0.3",
             "glimpse.stride=16", "glimpse.frame_stride=4")
    assert rc == 0
    r = json.loads((tmp_path / "mp4" / "results.json").read_text())
    assert r["classes"] == ["bigbuckbunny", "bikes", "carphone_pristine"]
    assert r["probe"]["n_test"] == 36 and r["probe"]["chance"] == pytest.approx(1 / 3)
    assert r["probe"]["baselines"]["input"] > 0.5


def write_video(path, frames, fps=20):
    """Encode uint8 frames [T, H, W, 3] with PyAV (MPEG-4 part 2)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


def test_folder_of_class_subfolders_labels_by_folder_and_names_a_short_clip(tmp_path):
    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("light", 200)):
        (tmp_path / label).mkdir()
        for i in range(3):
            frames = np.clip(level + rng.normal(0, 5, (20, 32, 32, 3)), 0, 255).astype(np.uint8)
            write_video(tmp_path / label / f"v_{label}_g0{i}_c01.avi", frames)
    cfg = {"data": {"modality": "video", "source": str(tmp_path), "group_pattern": "_g(\\d\\d)_",
                    "test_groups": ["02"]},
           "glimpse": {"fps": 10, "clip_frames": 8, "frames": 4, "patch": 16, "stride": 16, "color": "gray"},
           "network": {"preset": "tiny"}, "rule": {"offsets": [1]}}
    exp = Experiment(cfg)
    assert exp.split.classes == ["dark", "light"] and exp.train_store.shape == (4, 1, 8, 32, 32)
    assert sorted(exp.split.test.names) == [str(tmp_path / "dark/v_dark_g02_c01.avi"),
                                            str(tmp_path / "light/v_light_g02_c01.avi")]
    assert exp.train_store[exp.train_labels == 0].mean() < exp.train_store[exp.train_labels == 1].mean()
    write_video(tmp_path / "light" / "v_light_g03_c01.avi", np.zeros((6, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match=r"v_light_g03_c01.avi: 3 frames at 10 fps, fewer than glimpse.clip_frames \(8\)"):
        Experiment(cfg)
