"""Name -> plugin registries, extensible by decorator or by Python entry points.

A third-party package adds a plugin without editing saccade-sim by declaring, in its own pyproject::

    [project.entry-points."saccade_sim.modalities"]
    my_modality = "my_pkg.module:MyModality"

The groups are ``saccade_sim.modalities``, ``saccade_sim.policies``, ``saccade_sim.rules`` and
``saccade_sim.datasets``.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugins of one kind, by name; entry points of ``group`` are loaded on first lookup."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@RULES.register("oja")``. Re-registering a name replaces it."""

        def add(obj: T) -> T:
            self._items[name] = obj
            return obj

        return add

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._items:
                self._items[ep.name] = ep.load()

    def get(self, name: str, key: str = "") -> T:
        """The plugin called ``name``; a ConfigError naming ``key`` and the valid choices otherwise."""
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items


def summary(obj: Any) -> str:
    """First line of a plugin's docstring, for ``saccade-sim list``."""
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


MODALITIES: Registry = Registry("modality", "saccade_sim.modalities")
POLICIES: Registry = Registry("saccade policy", "saccade_sim.policies")
RULES: Registry = Registry("rule", "saccade_sim.rules")
DATASETS: Registry = Registry("dataset", "saccade_sim.datasets")
