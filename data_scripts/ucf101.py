"""Fetch UCF-101 into the folder layout the video adapter reads (one sub-folder per action class).

    python data_scripts/ucf101.py --root ~/data

Downloads ``UCF101.rar`` (6.5 GB) from the dataset's site and unpacks it with ``unrar`` (or ``7z``), which
must be installed, into ``ROOT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi``. The official split 1 holds out the
people groups 01-07, which the adapter reproduces with a group pattern on the file names::

    saccade-sim run --set data.modality=video --set data.source=ROOT/UCF-101 \\
        --set 'data.group_pattern=_g(\\d\\d)_' --set 'data.test_groups=["01","02","03","04","05","06","07"]' \\
        --set glimpse.size=112 --set glimpse.fps=10

(torchvision 0.26 no longer decodes video, so its ``UCF101`` class cannot be used; this layout is the same.)
"""
import argparse
import shutil
import subprocess
import urllib.request
from pathlib import Path

URL = "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder that receives UCF101.rar and UCF-101/")
    args = parser.parse_args()
    root = Path(args.root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "UCF101.rar"
    if not archive.exists():
        urllib.request.urlretrieve(URL, archive)
    tool = shutil.which("unrar") or shutil.which("7z")
    if tool is None:
        raise SystemExit("needs `unrar` or `7z` to unpack UCF101.rar")
    command = [tool, "x", "-y", str(archive)] + ([str(root) + "/"] if tool.endswith("unrar") else [f"-o{root}"])
    subprocess.run(command, check=True)
    classes = sorted(p.name for p in (root / "UCF-101").iterdir() if p.is_dir())
    print(f"{root / 'UCF-101'}: {len(classes)} classes ({classes[0]} ... {classes[-1]})")


if __name__ == "__main__":
    main()
