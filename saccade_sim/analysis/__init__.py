"""Analyses of a network's representations (probes first; more in later modules)."""
from .probe import grid_features, ridge_probe

__all__ = ["grid_features", "ridge_probe"]
