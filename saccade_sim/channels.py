"""The names of the network's channels, which a saccade policy may read (``SaccadePolicy.subscribes``).

``"<area>/activity"``: what area ``<area>`` (a layer agent's name, ``layer1``, ...) transmitted at the last event,
[B, ...]; ``"<area>/loss"``: its rule's local loss of that event per eye, [B] (only for rules that have one);
``"modulator"`` [B], ``"gaze"`` [B, D] and ``"stimulus"`` (the stimuli the eyes look at, [B, ...] of the store:
[B, C, H, W] for images) of the last event; ``"modulator_host"``: the modulator as the Eye drew it, on the host (a
NumPy array [B]: which eyes start a presentation, known without reading the device).
"""
from __future__ import annotations

from typing import Sequence

from .errors import ConfigError

AREA_QUANTITIES = ("activity", "loss")
EYE_CHANNELS = ("modulator", "stimulus", "gaze", "modulator_host")


def names(areas: Sequence[str]) -> list[str]:
    """Every channel of a network of ``areas``."""
    return [f"{a}/{q}" for a in areas for q in AREA_QUANTITIES] + list(EYE_CHANNELS)


def check(subscribes: Sequence[str], areas: Sequence[str], who: str) -> None:
    """A ConfigError naming ``who`` and the valid channels unless every name in ``subscribes`` is one."""
    valid = names(areas)
    unknown = [n for n in subscribes if n not in valid]
    if unknown:
        raise ConfigError(f"{who}: subscribes to unknown channel {unknown[0]!r}; valid channels: {', '.join(valid)}")
