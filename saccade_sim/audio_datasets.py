"""``ta:NAME[/VERSION]``: torchaudio's SPEECHCOMMANDS and LIBRISPEECH from ``data.root``.

Only the datasets' file lists are used (``get_metadata``); the audio is read by the audio modality
(soundfile), so no torchaudio decoding backend is needed. ``data.train_limit``/``test_limit`` pick a
seeded random subset before any file is read.

- ``ta:SPEECHCOMMANDS`` (or ``ta:SPEECHCOMMANDS/speech_commands_v0.01``): label = word, group = speaker;
  the dataset's own ``training``/``testing`` lists (disjoint speakers) are the train and test splits.
- ``ta:LIBRISPEECH/dev-clean`` (default ``train-clean-100``): label = speaker (speaker identification);
  a stratified ``test_fraction`` of each speaker's utterances is held out.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import ConfigError, DataError
from .modalities.base import Deferred, Modality, RawStimuli
from .specs import DataConfig
from .splits import Split, class_labels, load_file, stratified_split

#: name -> (default version keyword and value, train/test constructor keywords or None, label field, group field)
TORCHAUDIO: dict[str, tuple[tuple[str, str], tuple[dict, dict] | None, int, int]] = {
    "SPEECHCOMMANDS": (("url", "speech_commands_v0.02"), ({"subset": "training"}, {"subset": "testing"}), 2, 3),
    "LIBRISPEECH": (("url", "train-clean-100"), None, 3, 3),
}


def _items(ds: Any, label_field: int, group_field: int, limit: int, rng: np.random.Generator):
    """(paths, labels, groups) of ``limit`` seeded random items (all when 0), in dataset order."""
    n = len(ds)
    pick = np.sort(rng.permutation(n)[:limit]) if 0 < limit < n else np.arange(n)
    meta = [ds.get_metadata(int(i)) for i in pick]
    base = getattr(ds, "_archive", None)  # get_metadata's paths are relative to it (no public name for it)
    if base is None:
        raise DataError(f"torchaudio {type(ds).__name__}: this torchaudio version does not say where its files "
                        "are (no _archive); point data.source at the folder of audio files instead")
    return ([os.path.join(base, m[0]) for m in meta], [str(m[label_field]) for m in meta],
            [str(m[group_field]) for m in meta])


def load_torchaudio(spec: str, cfg: DataConfig, modality: type[Modality], options: Any,
                    rng: np.random.Generator) -> Split:
    """A :class:`Split` of a torchaudio dataset named ``NAME[/VERSION]`` under ``data.root``."""
    import torchaudio.datasets as tad

    name, _, version = spec.partition("/")
    if name not in TORCHAUDIO:
        raise ConfigError(f"data.source: unsupported torchaudio dataset {name!r}; valid choices: "
                          f"{', '.join('ta:' + n for n in TORCHAUDIO)}")
    if modality.name != "audio":
        raise ConfigError(f"data.source: ta:{name} is audio; data.modality is {modality.name!r}")
    if not cfg.root:
        raise ConfigError("data.root: required for torchaudio datasets (where the files are or go)")
    (key, default), parts, label_field, group_field = TORCHAUDIO[name]

    def dataset(extra: dict) -> Any:
        try:
            return getattr(tad, name)(cfg.root, download=cfg.download, **{key: version or default}, **extra)
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            raise DataError(f"{cfg.root}: torchaudio {name}: {exc} (set data.download = true to fetch it)") from None

    def raw(paths: list[str], labels: list[str], groups: list[str], classes: list[str]) -> RawStimuli:
        lookup = {c: i for i, c in enumerate(classes)}
        return RawStimuli(Deferred(lambda p: load_file(modality, p, options), paths),
                          np.array([lookup[c] for c in labels], np.int64), np.array(groups), paths)

    if parts is None:
        paths, labels, groups = _items(dataset({}), label_field, group_field,
                                       cfg.train_limit + cfg.test_limit if cfg.train_limit else 0, rng)
        y, classes = class_labels(labels)
        tr, te = stratified_split(y, cfg.test_fraction, rng)
        everything = raw(paths, labels, groups, classes)
        return Split(everything.subset(tr), everything.subset(te), classes)
    train = _items(dataset(parts[0]), label_field, group_field, cfg.train_limit, rng)
    test = _items(dataset(parts[1]), label_field, group_field, cfg.test_limit, rng)
    _, classes = class_labels(train[1] + test[1])
    return Split(raw(*train, classes), raw(*test, classes), classes)
