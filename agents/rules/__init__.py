"""Local learning rules; importing this package registers the built-in ones."""
from .base import BIAS, WEIGHT, Factors, Rule, Step, loss_changes, write_delta, write_loss_grad
from . import hebbian  # noqa: F401  (registers hebb, instar, oja)
from . import activation, sphere  # noqa: F401  (registers activation, sphere)
from . import clapp  # noqa: F401  (registers clapp, clapp_s)
from . import dendritic  # noqa: F401  (registers urbanczik_senn)

__all__ = ["BIAS", "WEIGHT", "Factors", "Rule", "Step", "loss_changes", "write_delta", "write_loss_grad"]
