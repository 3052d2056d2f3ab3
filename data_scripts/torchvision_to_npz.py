"""Fetch CIFAR-10 or STL-10 with torchvision and write the ``.npz`` the image adapter reads.

    python data_scripts/torchvision_to_npz.py CIFAR10 --root ~/data/torchvision --out cifar10.npz
    python data_scripts/torchvision_to_npz.py STL10 --unlabelled --root ~/data/torchvision --out stl10.npz

Output: ``x`` uint8 [N, H, W, 3], ``y`` int64 [N], ``x_test``, ``y_test``, ``classes`` (the official
train/test splits) and, with ``--unlabelled`` (STL-10), ``x_unlabelled`` [100000, 96, 96, 3]: the eyes see
them, the probe never (``data.unlabelled``). Needs a network (downloads ~170 MB for CIFAR-10, ~2.6 GB for
STL-10). Then: ``saccade-sim run --set data.source=cifar10.npz`` (or ``configs/clapp_vgg6.toml``).
"""
import argparse

import numpy as np
import torchvision.datasets as tvd


def arrays(name: str, root: str, train: bool | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 [N, H, W, 3], labels int64 [N], class names) of the official train, test or (None,
    STL-10) unlabeled split."""
    if name == "STL10":
        ds = tvd.STL10(root, split="unlabeled" if train is None else "train" if train else "test", download=True)
        return np.ascontiguousarray(np.moveaxis(ds.data, 1, -1)), np.asarray(ds.labels, np.int64), ds.classes
    ds = tvd.CIFAR10(root, train=train, download=True)
    return np.asarray(ds.data), np.asarray(ds.targets, np.int64), ds.classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["CIFAR10", "STL10"])
    parser.add_argument("--root", required=True, help="torchvision download folder")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--unlabelled", action="store_true", help="STL-10: also its 100,000 unlabelled images")
    args = parser.parse_args()
    x, y, classes = arrays(args.dataset, args.root, True)
    x_test, y_test, _ = arrays(args.dataset, args.root, False)
    extra = {"x_unlabelled": arrays(args.dataset, args.root, None)[0]} if args.unlabelled and args.dataset == "STL10" else {}
    np.savez_compressed(args.out, x=x, y=y, x_test=x_test, y_test=y_test, classes=np.array(classes), **extra)
    print(f"{args.out}: x {x.shape}, x_test {x_test.shape}, classes {', '.join(classes)}")


if __name__ == "__main__":
    main()
