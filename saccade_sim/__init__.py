"""saccade-sim: an event-driven saccade simulation engine for local, biologically plausible learning."""
from .config import Config, load, resolve
from .errors import ConfigError, DataError, DivergenceError, SaccadeSimError
from .events import Broadcast, Glimpse
from .registry import DATASETS, MODALITIES, POLICIES, RULES

__version__ = "0.1.0"

__all__ = ["Config", "load", "resolve", "Experiment", "Glimpse", "Broadcast", "SaccadeSimError", "ConfigError",
           "DataError", "DivergenceError", "DATASETS", "MODALITIES", "POLICIES", "RULES", "__version__"]


def __getattr__(name: str):
    # Experiment imports the layer agents, which import this package's config: load it on first use.
    if name == "Experiment":
        from .experiment import Experiment

        return Experiment
    raise AttributeError(f"module 'saccade_sim' has no attribute {name!r}")
