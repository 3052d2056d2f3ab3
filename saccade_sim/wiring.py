"""The network as a graph: its areas (layer agents, by name) and the edges between them, from which
:class:`saccade_sim.simulation.Simulation` wires one SimPy process per area and per dendritic edge.

Feedforward edges drive an area's soma (its input). Without any declared, they are the chain eye -> layer1 ->
layer2 -> ... (each with its layer's ``delay_ms``); declared ones (``[[network.edges]] kind = "feedforward"``, each
with its own ``delay_ms``) are the whole feedforward graph: every area needs at least one input, every source
comes before its target in ``network.layers`` (so the graph has no cycle and the areas' order is a topological
one), and an area with several inputs receives their channel concatenation, in the order the edges are declared.
The areas that feed no other area are the network's sinks. Top-down and lateral edges reach the areas'
dendrites: a dendritic edge delivers the source's latest output ``delay_ms`` after the source published it, so
an area's dendrite sees a higher area's output of an earlier event (the higher area runs after it) and a
self-edge its own last output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError
from .specs import EdgeSpec

EYE = "eye"  #: the source name of the eye's channel


@dataclass(frozen=True)
class Edge:
    source: str  #: "eye" or an area
    target: str  #: an area
    kind: str  #: "feedforward", "topdown" or "lateral"
    delay_ms: float = 0.0
    key: str = ""  #: the configuration key it comes from (``network.edges[j]``; ``network.layers[i]``: the chain)


def chain(areas: Sequence[str], delays: Sequence[float]) -> list[Edge]:
    """The default feedforward edges: eye -> areas[0] -> areas[1] -> ..., area i after ``delays[i]``."""
    return [Edge(src, dst, "feedforward", d, f"network.layers[{i}]")
            for i, (src, dst, d) in enumerate(zip([EYE, *areas], areas, delays))]


def network_edges(areas: Sequence[str], delays: Sequence[float], extra: Sequence[EdgeSpec] = ()) -> list[Edge]:
    """The feedforward edges (the chain of ``areas``, ``delays`` per area, unless ``extra`` declares feedforward
    edges) followed by the dendritic edges of ``extra``, checked: sources and targets exist, a top-down edge
    comes from a higher area, feedforward edges form no cycle and follow the order of ``areas``."""
    rank = {a: i for i, a in enumerate(areas)}
    declared, dendritic_edges = [], []
    for i, e in enumerate(extra):
        path = f"network.edges[{i}]"
        sources = {EYE: -1, **rank} if e.kind == "feedforward" else rank
        for key, valid in (("source", sources), ("target", rank)):
            if getattr(e, key) not in valid:
                what = "source" if valid is not rank else "area"
                raise ConfigError(f"{path}.{key}: unknown {what} {getattr(e, key)!r}; "
                                  f"valid choices: {', '.join(valid)}")
        if e.kind == "topdown" and rank[e.source] <= rank[e.target]:
            raise ConfigError(f"{path}: a top-down edge comes from a higher area; {e.source} is not above {e.target}")
        edge = Edge(e.source, e.target, e.kind, e.delay_ms, path)
        (declared if e.kind == "feedforward" else dendritic_edges).append(edge)
    if not declared:
        return chain(areas, delays) + dendritic_edges
    _check_feedforward(declared, areas, delays)
    return declared + dendritic_edges


def _check_feedforward(edges: Sequence[Edge], areas: Sequence[str], delays: Sequence[float]) -> None:
    """ConfigErrors for declared feedforward edges that are not a graph the areas can run in their order."""
    for i, d in enumerate(delays):
        if d:
            raise ConfigError(f"network.layers[{i}].delay_ms: the feedforward edges are declared in network.edges; "
                              "give each edge its delay_ms there instead")
    seen = set()
    for e in edges:
        if (e.source, e.target) in seen:
            raise ConfigError(f"{e.key}: a second feedforward edge {e.source} -> {e.target}")
        seen.add((e.source, e.target))
    for area in areas:
        if not any(e.target == area for e in edges):
            raise ConfigError(f"network.edges: area {area} has no feedforward input; declare an edge to it "
                              "(source \"eye\" or an area before it)")
    loop = cycle(edges)
    if loop:
        raise ConfigError(f"{loop[0].key}: the feedforward edges form a cycle "
                          f"{' -> '.join([e.source for e in loop] + [loop[0].source])}; remove one of its edges")
    rank = {EYE: -1, **{a: i for i, a in enumerate(areas)}}
    for e in edges:
        if rank[e.source] >= rank[e.target]:
            raise ConfigError(f"{e.key}: {e.source} feeds {e.target}, which comes before it in network.layers; "
                              "list the layers so that every feedforward source comes before its target")


def cycle(edges: Sequence[Edge]) -> list[Edge]:
    """The edges of one directed cycle of ``edges`` (in order along it), or [] if there is none."""
    out: dict[str, list[Edge]] = {}
    for e in edges:
        out.setdefault(e.source, []).append(e)
    done: set[str] = set()

    def walk(node: str, path: list[Edge]) -> list[Edge]:
        """Depth-first from ``node``, reached along ``path``: a cycle closed through ``path``, or []."""
        for e in out.get(node, []):
            on_path = [p.source for p in path] + [node]
            if e.target in on_path:
                return (path + [e])[on_path.index(e.target):]
            if e.target not in done:
                found = walk(e.target, path + [e])
                if found:
                    return found
        done.add(node)
        return []

    for start in list(out):
        found = [] if start in done else walk(start, [])
        if found:
            return found
    return []


def feedforward(edges: Sequence[Edge], target: str) -> list[Edge]:
    """The feedforward inputs of ``target``, in configuration order (their outputs are concatenated in it)."""
    return [e for e in edges if e.target == target and e.kind == "feedforward"]


def latency(edges: Sequence[Edge]) -> float:
    """The longest feedforward path's delay from the eye to any area, ms: arrival(t) = max over the edges s -> t of
    arrival(s) + delay (the chain: the sum of the layers' delays). ``edges`` in the order
    :func:`network_edges` gives (every source before its target)."""
    arrival = {EYE: 0.0}
    for e in edges:
        if e.kind == "feedforward":
            arrival[e.target] = max(arrival.get(e.target, 0.0), arrival[e.source] + e.delay_ms)
    return max(arrival.values())


def sinks(edges: Sequence[Edge], areas: Sequence[str]) -> list[str]:
    """The areas that feed no area (the chain: the last one), in the order of ``areas``."""
    fed = {e.source for e in edges if e.kind == "feedforward"}
    return [a for a in areas if a not in fed]


def layer_inputs(edges: Sequence[Edge], areas: Sequence[str]) -> list[list[tuple[int, str]]]:
    """Per area, its feedforward inputs as (index into [the eye's glimpse, areas[0], areas[1], ...], edge key)."""
    index = {EYE: 0, **{a: i + 1 for i, a in enumerate(areas)}}
    return [[(index[e.source], e.key) for e in feedforward(edges, a)] for a in areas]
