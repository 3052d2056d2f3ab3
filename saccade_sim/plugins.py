"""Imports the built-in plugins so that they register themselves."""
from . import closed_loop, policies  # noqa: F401
from . import datasets  # noqa: F401
from .modalities import audio, image, video  # noqa: F401
import agents.rules  # noqa: F401
