"""The torch build this package works with, checked before anything imports it.

``pip install saccade-sim`` keeps a torch that is already installed when its version is in
:data:`TORCH_RANGE` (a CUDA build such as ``2.11.0+cu128`` included). A missing, broken or out-of-range torch
is reported by :func:`require_torch` as one :class:`UnusableTorch` error that says what to install, instead of
an import traceback from deep inside the package.
"""
from __future__ import annotations

import re

#: [lowest, first unsupported) torch release; keep in step with pyproject.toml's dependencies
TORCH_RANGE = ((2, 11), (2, 12))
INSTALL_HINT = ("install a torch 2.11.x build first (on a GPU machine the CUDA build for your driver, from "
                "pytorch.org's instructions), then `pip install -e .` without -c constraints.txt")


class UnusableTorch(ImportError):
    """torch is missing, cannot be imported, or is a release this package does not support."""


def parse_version(text: str) -> tuple[int, int]:
    """``'2.11.0+cu128'`` -> ``(2, 11)`` (major, minor; local build labels and pre-release tags ignored)."""
    m = re.match(r"(\d+)\.(\d+)", text)
    if not m:
        raise UnusableTorch(f"saccade-sim: cannot read the torch version {text!r}; {INSTALL_HINT}")
    return int(m.group(1)), int(m.group(2))


def check_version(text: str) -> None:
    """Raise :class:`UnusableTorch` unless ``text`` is a torch version in :data:`TORCH_RANGE`."""
    low, high = TORCH_RANGE
    if not low <= parse_version(text) < high:
        raise UnusableTorch(f"saccade-sim needs torch >= {low[0]}.{low[1]}, < {high[0]}.{high[1]}; this "
                            f"environment has torch {text}; {INSTALL_HINT}")


def require_torch() -> None:
    """Import torch and check its version (once per process; cheap afterwards)."""
    try:
        import torch
    except ImportError as exc:  # missing, or a build whose shared libraries do not load
        raise UnusableTorch(f"saccade-sim cannot import torch ({exc}); {INSTALL_HINT}") from None
    check_version(torch.__version__)
