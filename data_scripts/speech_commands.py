"""Fetch Google Speech Commands v0.02 with torchaudio and write a flat folder of ``WORD_SPEAKER_REP.wav``
files (the layout of ``../shared/data/fsdd``), optionally resampled.

    python data_scripts/speech_commands.py --root ~/data/torchaudio --out speech_commands --rate 16000

Keeps the ten command words (yes, no, up, down, left, right, on, off, stop, go) of the ``training`` and
``testing`` lists. The word is the label (the audio adapter's default for flat folders) and the speaker the
second field, so a run holds speakers out with ``data.group_pattern = "^[^_]+_([^_]+)_"``. Needs a
network (~2.3 GB). Without converting, ``data.source = "ta:SPEECHCOMMANDS"`` with ``data.root`` reads the
download directly, with the dataset's own speaker-disjoint train/test lists.
"""
import argparse
import os
from pathlib import Path

import soundfile
import torchaudio.datasets as tad

from saccade_sim.modalities.audio import to_mono

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="torchaudio download folder")
    parser.add_argument("--out", required=True, help="folder to write the WAV files into")
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the written files (Hz)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for subset in ("training", "testing"):
        ds = tad.SPEECHCOMMANDS(args.root, download=True, subset=subset)
        for i in range(len(ds)):
            rel, rate, word, speaker, rep = ds.get_metadata(i)
            if word not in WORDS:
                continue
            wave, rate = soundfile.read(os.path.join(ds._archive, rel), dtype="float32")
            soundfile.write(out / f"{word}_{speaker}_{rep}.wav", to_mono(wave, rate, args.rate), args.rate,
                            subtype="PCM_16")
            n += 1
    print(f"{out}: {n} files")


if __name__ == "__main__":
    main()
