"""Layer agents, the networks built from configuration, and the local learning rules."""
from .layers import Layer, build_layers, PRESETS
from .agent import LayerAgent
from .rules import Factors, Rule

__all__ = ["Layer", "build_layers", "PRESETS", "LayerAgent", "Factors", "Rule"]
