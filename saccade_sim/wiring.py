"""The network as a graph: its areas (layer agents, by name) and the edges between them, from which
:class:`saccade_sim.simulation.Simulation` wires one SimPy process per area and per dendritic edge.

Feedforward edges are the chain eye -> layer1 -> layer2 -> ... (each with its layer's ``delay_ms``); the
configured edges (``[[network.edges]]``) add top-down and lateral edges to the areas' dendrites. A dendritic edge
delivers the source's latest output ``delay_ms`` after the source published it, so an area's dendrite sees a
higher area's output of an earlier event (the higher area runs after it) and a self-edge its own last output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError
from .specs import EdgeSpec


@dataclass(frozen=True)
class Edge:
    source: str  #: "eye" or an area
    target: str  #: an area
    kind: str  #: "feedforward", "topdown" or "lateral"
    delay_ms: float = 0.0


def network_edges(areas: Sequence[str], delays: Sequence[float], extra: Sequence[EdgeSpec] = ()) -> list[Edge]:
    """The feedforward chain of ``areas`` (the eye first; ``delays`` per area) and the dendritic edges ``extra``,
    checked: sources and targets are areas, a top-down edge comes from a higher area, feedforward is the chain."""
    chain = [Edge(src, dst, "feedforward", d) for src, dst, d in zip(["eye", *areas], areas, delays)]
    rank = {a: i for i, a in enumerate(areas)}
    out = []
    for i, e in enumerate(extra):
        path = f"network.edges[{i}]"
        if e.kind == "feedforward":
            raise ConfigError(f"{path}.kind: the feedforward edges are the chain of network.layers (eye -> layer1 -> "
                              "...); declare top-down or lateral edges here")
        for key in ("source", "target"):
            if getattr(e, key) not in rank:
                raise ConfigError(f"{path}.{key}: unknown area {getattr(e, key)!r}; valid choices: {', '.join(areas)}")
        if e.kind == "topdown" and rank[e.source] <= rank[e.target]:
            raise ConfigError(f"{path}: a top-down edge comes from a higher area; {e.source} is not above {e.target}")
        out.append(Edge(e.source, e.target, e.kind, e.delay_ms))
    return chain + out


def dendritic(edges: Sequence[Edge], target: str) -> list[Edge]:
    """The edges to ``target``'s dendrite, in configuration order."""
    return [e for e in edges if e.target == target and e.kind != "feedforward"]
