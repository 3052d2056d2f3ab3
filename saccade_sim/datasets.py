"""Dataset adapters: registered names, ``.npz`` files, folders of files, torchvision/torchaudio by name.

Every adapter returns a :class:`Split` (train and held-out test :class:`RawStimuli`); the modality then
turns them into tensors. Nothing is downloaded unless ``data.download = true``.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .modalities.base import Deferred, Modality, RawStimuli
from .registry import DATASETS
from .specs import DataConfig
from .splits import Split, class_labels, check_values, load_file, stratified_split

#: labels are class indices 0..C-1; more classes than this is taken for a mistake (e.g. ids used as labels)
MAX_CLASSES = 100_000


def group_split(groups: np.ndarray, cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (e.g. speakers): those named in ``data.test_groups``, else a random
    ``test_fraction`` of the groups (at least one, never all)."""
    names = sorted(set(groups.tolist()))
    if cfg.test_groups:
        unknown = sorted(set(cfg.test_groups) - set(names))
        if unknown:
            raise ConfigError(f"data.test_groups: unknown group {unknown[0]!r}; groups found by "
                              f"data.group_pattern: {', '.join(names)}")
        held = set(cfg.test_groups)
    else:
        n = min(max(1, int(round(len(names) * cfg.test_fraction))), len(names) - 1)
        held = set(rng.permutation(np.array(names, dtype=object))[:n].tolist())
    test = np.isin(groups, list(held))
    if test.all() or not test.any():
        raise ConfigError(f"data.test_groups: holding out {sorted(held)} leaves "
                          f"{'no training' if test.all() else 'no test'} stimuli (groups: {', '.join(names)})")
    return np.flatnonzero(~test), np.flatnonzero(test)


def _match(pattern: str, key: str, files: list[Path]) -> list[str]:
    """Group 1 (or the whole match) of regex ``pattern`` in every file name; a DataError names a misfit."""
    regex, out = re.compile(pattern), []
    for f in files:
        m = regex.search(f.name)
        if not m:
            raise DataError(f"{f}: file name does not match {key} {pattern!r}")
        out.append(m.group(1) if m.groups() else m.group(0))
    return out


def _limit(raw: RawStimuli, n: int, rng: np.random.Generator) -> RawStimuli:
    if n <= 0 or n >= len(raw):
        return raw
    return raw.subset(np.sort(rng.permutation(len(raw))[:n]))


def load_npz(path: Path, modality: type[Modality], cfg: DataConfig, rng: np.random.Generator) -> Split:
    """``x`` [N, ...] and ``y`` int [N], optional ``x_test``/``y_test``; shapes checked by the modality."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy (one bare array) under a .npz name
            raise DataError(f"{path}: not a .npz archive of named arrays (it holds one bare array, as a .npy "
                            "does); save it with np.savez(path, x=..., y=...)")
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (found: {', '.join(sorted(arrays)) or 'none'})")

    def part(xk: str, yk: str) -> RawStimuli:
        x, y = arrays[xk], arrays[yk]
        modality.check_array(x, f"{path}:{xk}")
        check_values(x, f"{path}:{xk}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}:{yk}: expected integer labels [N], got {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{path}: {xk} has {len(x)} items but {yk} has {len(y)}")
        if len(x) == 0:
            raise DataError(f"{path}:{xk}: no stimuli")
        if y.min() < 0:
            raise DataError(f"{path}:{yk}: labels must be >= 0, found {int(y.min())}")
        if y.max() >= MAX_CLASSES:
            raise DataError(f"{path}:{yk}: label {int(y.max())} is not a class index: labels must be 0..C-1 "
                            f"with at most {MAX_CLASSES} classes")
        return RawStimuli(x, y.astype(np.int64))

    train = part("x", "y")
    if "x_test" in arrays:
        if "y_test" not in arrays:
            raise DataError(f"{path}: has 'x_test' but no 'y_test'")
        test = part("x_test", "y_test")
        if arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
            raise DataError(f"{path}: x_test items have shape {arrays['x_test'].shape[1:]} but x items "
                            f"{arrays['x'].shape[1:]}; both parts must hold stimuli of one shape")
    else:
        tr, te = stratified_split(train.y, cfg.test_fraction, rng)
        train, test = train.subset(tr), train.subset(te)
    n_classes = int(np.concatenate([train.y, test.y]).max()) + 1
    names = arrays.get("classes")
    if names is not None and names.ndim != 1:
        raise DataError(f"{path}:classes: expected one name per class [C], got shape {names.shape}")
    if names is not None and len(names) < n_classes:
        raise DataError(f"{path}:classes: {len(names)} names but the labels go up to {n_classes - 1} "
                        f"(need at least {n_classes})")
    classes = [str(c) for c in (range(n_classes) if names is None else names)]
    unlabelled = None
    if cfg.unlabelled and "x_unlabelled" in arrays:
        x = arrays["x_unlabelled"]
        modality.check_array(x, f"{path}:x_unlabelled")
        check_values(x, f"{path}:x_unlabelled")
        unlabelled = RawStimuli(x, np.full(len(x), -1, dtype=np.int64))
    return Split(train, test, classes, unlabelled)


def load_folder(path: Path, modality: type[Modality], cfg: DataConfig, options, rng: np.random.Generator) -> Split:
    """Files with the modality's extensions. Label: ``data.label_pattern`` (regex, group 1) on the file
    name, else the sub-folder name, else the modality's default for flat folders. A flat folder of
    files without a default label (images, videos) goes to the modality's ``unlabelled`` (e.g. crops
    labelled by photo). With ``data.group_pattern`` whole groups (speakers) are held out for test."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in modality.extensions and p.is_file())
    if not files:
        raise DataError(f"{path}: no {modality.name} files ({', '.join(modality.extensions)})")
    if cfg.label_pattern:
        names = _match(cfg.label_pattern, "data.label_pattern", files)
    elif any(f.parent != path for f in files):
        names = [f.parent.relative_to(path).parts[0] for f in files]
    else:
        names = [modality.flat_label(f) for f in files]
        if any(n is None for n in names):
            items = [load_file(modality, f, options) for f in files]
            return modality.unlabelled(items, [f.stem for f in files], cfg, options, rng)
    y, classes = class_labels(names)
    groups = np.array(_match(cfg.group_pattern, "data.group_pattern", files)) if cfg.group_pattern else None
    raw = RawStimuli(Deferred(lambda f: load_file(modality, f, options), files), y, groups,
                     names=[str(f) for f in files])  # read after the split and the limits
    tr, te = group_split(groups, cfg, rng) if groups is not None else stratified_split(y, cfg.test_fraction, rng)
    return Split(raw.subset(tr), raw.subset(te), classes)


def photo_crops(photos: list[np.ndarray], names: list[str], cfg: DataConfig, rng: np.random.Generator) -> Split:
    """Labelled stimuli from unlabelled photographs: ``crop_size`` squares, label = which photo.

    Each photo is scaled so its shorter side is 4 x crop_size; train crops come from the first part of
    its longer axis and test crops from the last ``test_fraction`` (at least one crop wide), so no test
    pixel is ever seen in training.
    """
    from PIL import Image

    if any(p.ndim == 2 for p in photos):  # mixed grey and colour: all grey
        photos = [p if p.ndim == 2 else np.asarray(Image.fromarray(p[..., :3]).convert("L")) for p in photos]
    s = cfg.crop_size
    n_test = max(1, int(round(cfg.crops_per_photo * cfg.test_fraction)))
    n_train = cfg.crops_per_photo - n_test
    xs, ys, xt, yt = [], [], [], []
    for label, photo in enumerate(photos):
        pil = Image.fromarray(photo)
        scale = 4 * s / min(pil.size)
        a = np.asarray(pil.resize((round(pil.size[0] * scale), round(pil.size[1] * scale)), Image.BILINEAR))
        if a.shape[1] > a.shape[0]:
            a = np.swapaxes(a, 0, 1)  # longer axis first
        long_side = a.shape[0]
        cut = min(long_side - s, max(s, int(round(long_side * (1 - cfg.test_fraction)))))
        for n, lo, hi, out_x, out_y in ((n_train, 0, cut - s, xs, ys), (n_test, cut, long_side - s, xt, yt)):
            for top, left in zip(rng.integers(lo, hi + 1, n), rng.integers(0, a.shape[1] - s + 1, n)):
                out_x.append(a[top:top + s, left:left + s])
                out_y.append(label)
    return Split(RawStimuli(np.stack(xs), np.array(ys, np.int64)),
                 RawStimuli(np.stack(xt), np.array(yt, np.int64)), list(names))


NATURAL_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "grass.png",
                  "gravel.png", "hubble_deep_field.jpg", "moon.png", "motorcycle_left.png", "retina.jpg",
                  "rocket.jpg")


@DATASETS.register("natural")
def natural(cfg: DataConfig, modality: type[Modality], options, rng: np.random.Generator) -> Split:
    """12 photographs bundled with scikit-image (no download); crops labelled by photo (see photo_crops)."""
    if modality.name != "image":
        raise ConfigError(f"data.source: dataset 'natural' is images; data.modality is {modality.name!r}")
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    files = [folder / n for n in NATURAL_PHOTOS]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(f"scikit-image lacks its bundled photographs: {', '.join(missing)}")
    return photo_crops([load_file(modality, f, options) for f in files], [f.stem for f in files], cfg, rng)


def load_torchvision(name: str, cfg: DataConfig, modality: type[Modality]) -> Split:
    """``tv:NAME``: a torchvision dataset class with ``root`` whose constructor takes ``train=`` (MNIST, CIFAR10,
    ...) or ``split="train"/"test"`` (SVHN, STL10, ...) and whose items are (image, integer label). Anything else
    (``ImageFolder``, detection or segmentation sets, classes that need other arguments) is a ConfigError that
    names it and says what to use instead."""
    import torchvision.datasets as tvd

    source = f"data.source: 'tv:{name}'"
    cls = getattr(tvd, name, None)
    if cls is None or name.startswith("_") or not isinstance(cls, type) or not issubclass(cls, tvd.VisionDataset):
        raise ConfigError(f"{source}: torchvision has no dataset class {name!r}")
    if cls in (tvd.ImageFolder, tvd.DatasetFolder):
        raise ConfigError(f"{source}: for a folder of images (one sub-folder per class) set data.source to the "
                          "folder's path instead")
    if not cfg.root:
        raise ConfigError("data.root: required for torchvision datasets (where the files are or go)")
    unfit = (f"{source}: torchvision.datasets.{name} is not a classification dataset with train/test parts "
             "this adapter can open (it needs (image, integer label) items and a train= or split= argument); "
             "convert it to an .npz file (x, y, x_test, y_test) or pass it from Python: Experiment(config, "
             "train=dataset, test=test_dataset)")

    def open_part(train: bool | None):
        split = {"split": "unlabeled" if train is None else "train" if train else "test"}
        attempts = (split,) if train is None else ({"train": train}, split)
        for i, kwargs in enumerate(attempts):
            try:
                return cls(cfg.root, download=cfg.download, **kwargs)
            except TypeError:
                if i == len(attempts) - 1:
                    raise ConfigError(unfit) from None
            except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
                raise DataError(f"{cfg.root}: torchvision {name}: {exc} (set data.download = true to fetch it)") from None
            except (ValueError, OSError) as exc:
                raise DataError(f"{source}: cannot open it in {cfg.root}: {type(exc).__name__}: {exc}") from None

    def part(train: bool | None) -> RawStimuli:
        """The train (True), test (False) or unlabeled (None, STL-10) split."""
        ds = open_part(train)
        x = getattr(ds, "data", None)
        y = getattr(ds, "targets", getattr(ds, "labels", None))
        try:
            if x is None or y is None:
                pairs = [(np.asarray(img), int(t)) for img, t in ds]
                x, y = np.stack([p[0] for p in pairs]), [p[1] for p in pairs]
            x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
        except (TypeError, ValueError):
            raise ConfigError(unfit) from None
        if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
            x = np.moveaxis(x, 1, -1)  # STL-10/SVHN store [N, C, H, W]
        if y.ndim != 1 or len(y) != len(x):
            raise ConfigError(unfit)
        modality.check_array(x, f"tv:{name}")
        return RawStimuli(x, y)

    train, test = part(True), part(False)
    classes = list(getattr(cls, "classes", [])) or [str(c) for c in range(int(train.y.max()) + 1)]
    unlabelled = None
    if cfg.unlabelled and name == "STL10":  # STL-10's 100,000 unlabelled images, as CLAPP trains on them
        extra = part(None)
        unlabelled = RawStimuli(extra.x, np.full(len(extra.x), -1, dtype=np.int64))
    return Split(train, test, [str(c) for c in classes], unlabelled)


def dataset_labels(ds, where: str) -> np.ndarray:
    """The integer labels of a map-style dataset: its ``targets`` (torchvision's attribute) or every item's
    second element."""
    try:
        n = len(ds)
    except TypeError:
        raise ConfigError(f"{where}: a map-style torch Dataset (with __len__ and __getitem__) is needed, "
                          f"got {type(ds).__name__}") from None
    targets = getattr(ds, "targets", None)
    labels = targets if targets is not None and len(targets) == n else [ds[i][1] for i in range(n)]
    try:
        y = np.asarray([int(t) for t in labels], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: labels must be integers (items are (stimulus, label) pairs)") from None
    if n == 0:
        raise DataError(f"{where}: the dataset is empty")
    if y.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, found {int(y.min())}")
    return y


def from_dataset(train, test, modality: type[Modality], cfg: DataConfig, rng: np.random.Generator) -> Split:
    """A map-style torch ``Dataset`` of (stimulus, label) pairs as a source (``Experiment(cfg, train=ds)``):
    stimuli in the modality's file layout (images [H, W, C] arrays or [C, H, W] tensors, audio waveforms at
    ``glimpse.sample_rate``, ...), read only once they are in the split and the limits. Without ``test``, a
    stratified ``data.test_fraction`` of ``train`` is held out. Class names: the dataset's ``classes``."""
    def raw(ds, where: str) -> RawStimuli:
        def read(i: int) -> np.ndarray:
            x = modality.to_raw(ds[i][0])
            check_values(x, f"{where}[{i}]")
            return x

        labels = dataset_labels(ds, where)  # first: it checks that ds is a map-style dataset
        return RawStimuli(Deferred(read, range(len(ds))), labels, names=[f"{where}[{i}]" for i in range(len(ds))])

    whole = raw(train, "train dataset")
    if test is None:
        tr, te = stratified_split(whole.y, cfg.test_fraction, rng)
        split_train, split_test = whole.subset(tr), whole.subset(te)
    else:
        split_train, split_test = whole, raw(test, "test dataset")
    n = int(max(split_train.y.max(), split_test.y.max())) + 1
    classes = [str(c) for c in getattr(train, "classes", None) or range(n)]
    return Split(split_train, split_test, classes)


def load(cfg: DataConfig, modality: type[Modality], options, seed: int, train=None, test=None) -> Split:
    """Dispatch ``data.source`` to an adapter (or take the torch datasets ``train`` / ``test``), then apply
    ``train_limit``/``test_limit`` (seeded); files of a folder are read only once they are in the subsets."""
    from .seeding import stream_seed

    rng = np.random.default_rng(stream_seed(seed, "data"))
    source = cfg.source
    if train is not None:
        split = from_dataset(train, test, modality, cfg, rng)
    elif source.startswith("python:"):
        raise ConfigError(f"data.source: {source!r} was a Dataset given in Python; pass it again: "
                          "Experiment(config, train=dataset, test=test_dataset)")
    elif source in DATASETS:
        split = DATASETS.get(source)(cfg, modality, options, rng)
    elif source.startswith("tv:"):
        split = load_torchvision(source[3:], cfg, modality)
    elif source.startswith("ta:"):
        from .audio_datasets import load_torchaudio

        split = load_torchaudio(source[3:], cfg, modality, options, rng)
    else:
        path = Path(source).expanduser()
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as exc:  # e.g. a name too long
            raise ConfigError(f"data.source: {source!r}: {exc.strerror or exc}") from None
        if is_dir:
            split = load_folder(path, modality, cfg, options, rng)
        elif path.suffix == ".npz":
            if not exists:
                raise DataError(f"{path}: file not found (data.source)")
            split = load_npz(path, modality, cfg, rng)
        else:
            hint = "no such file or folder" if not exists else "not a .npz file or a folder"
            raise ConfigError(f"data.source: {source!r}: {hint}; registered datasets: "
                              f"{', '.join(DATASETS.names())}, tv:NAME for torchvision, ta:NAME for torchaudio")
    if not len(split.train) or not len(split.test):
        raise DataError(f"data.source {source}: {len(split.train)} training and {len(split.test)} test stimuli; "
                        "both parts need at least one (held out per class: a class needs 2 stimuli to give one)")
    limit_rng = np.random.default_rng(stream_seed(seed, "data-limit"))
    return Split(_limit(split.train, cfg.train_limit, limit_rng).read(),
                 _limit(split.test, cfg.test_limit, limit_rng).read(), split.classes,
                 None if split.unlabelled is None else split.unlabelled.read())
