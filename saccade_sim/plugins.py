"""The built-in plugins, registered in one place: importing this module imports every built-in modality,
dataset, saccade policy and rule, each of which registers itself (``@MODALITIES.register`` etc.)."""
import agents.rules  # noqa: F401  (hebb, instar, oja, softhebb, activation, sphere, clapp, clapp_s, urbanczik_senn)

from . import closed_loop, datasets, policies  # noqa: F401  (the datasets; raster, random; saliency, surprise, ior)
from .modalities import audio, image, video  # noqa: F401
