"""The project's import graph, read with ``ast`` (nothing is imported), and the layers it must respect.

A node is a module of ``saccade_sim`` or ``agents`` (``pkg/__init__.py`` is ``pkg``); an arrow ``a -> b`` is an
``import`` or ``from ... import`` in ``a`` that names ``b`` (``from pkg import name`` is an arrow to ``pkg.name``
where that is a module, else to ``pkg``), at any depth of the file (an import inside a function is a dependency
too), except under ``if TYPE_CHECKING:`` (annotations only: never executed). Run as a script it prints the
numbers of a tree: ``python tests/import_graph.py [ROOT]``.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("saccade_sim", "agents")

#: The layers, lowest first. A module may import its own layer's modules and any lower layer's, never a
#: higher one's. Inside the "parts" layer the groups are independent: a part imports no other part.
CORE = ("saccade_sim.errors", "saccade_sim.events", "saccade_sim.registry", "saccade_sim.seeding",
        "saccade_sim.specs", "saccade_sim.gaze", "saccade_sim.parts", "saccade_sim.channels")
UTIL = ("saccade_sim.compat", "saccade_sim.version", "saccade_sim.io", "saccade_sim.hostsync",
        "saccade_sim.signals", "saccade_sim.progress", "saccade_sim.whitening", "saccade_sim.plots",
        "saccade_sim.provenance", "saccade_sim.runfolder", "saccade_sim.logs")
PARTS = {
    "modalities": ("saccade_sim.modalities", "saccade_sim.datasets", "saccade_sim.audio_datasets",
                   "saccade_sim.splits", "saccade_sim.retina"),
    "agents": ("agents",),
    "engine": ("saccade_sim.eye", "saccade_sim.simulation", "saccade_sim.monitors", "saccade_sim.policies",
               "saccade_sim.distributed", "saccade_sim.wiring", "saccade_sim.closed_loop", "saccade_sim.oculomotor",
               "saccade_sim.asynchronous"),
    "analysis": ("saccade_sim.analysis",),
}
EXPERIMENT = ("saccade_sim.config", "saccade_sim.plugins", "saccade_sim.build", "saccade_sim.evaluation",
              "saccade_sim.persistence", "saccade_sim.experiment")
APP = ("saccade_sim", "saccade_sim.__main__", "saccade_sim.cli", "saccade_sim.checkpoint", "saccade_sim.sweep",
       "saccade_sim.analysis.report")
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", CORE), ("util", UTIL), ("parts", sum(PARTS.values(), ())), ("experiment", EXPERIMENT), ("app", APP))

#: (importer prefix, imported prefix, why): arrows the layers alone would allow but the design forbids
FORBIDDEN = (
    ("agents", "saccade_sim.config", "a part takes its spec, not the configuration"),
    ("saccade_sim.modalities", "saccade_sim.config", "a part takes its spec, not the configuration"),
    ("saccade_sim.eye", "saccade_sim.config", "a part takes its spec, not the configuration"),
)


def _inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _most_specific(name: str, prefixes) -> str | None:
    hits = [p for p in prefixes if _inside(name, p)]
    return max(hits, key=len) if hits else None


def layer_of(module: str) -> tuple[int, str] | None:
    """(layer index, group) of ``module``: the layer listing its longest matching prefix; None if unlisted."""
    best = None
    for i, (layer, prefixes) in enumerate(LAYERS):
        hit = _most_specific(module, prefixes)
        if hit and (best is None or len(hit) > len(best[2])):
            group = next((g for g, ps in PARTS.items() if hit in ps), layer) if layer == "parts" else layer
            best = (i, group, hit)
    return None if best is None else best[:2]


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every ``.py`` of :data:`PACKAGES` under ``root``."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    mods = modules(root)
    arrows: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    arrows[name].add(target)
    return arrows


def cycles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(arrows[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(arrows)))
    for v in sorted(arrows):
        if v not in index:
            visit(v)
    return found


def violations(arrows: dict[str, set[str]]) -> list[str]:
    """Every arrow that breaks the layers (upward, or between two parts) or a :data:`FORBIDDEN` rule."""
    out = []
    for a in sorted(arrows):
        for b in sorted(arrows[a]):
            la, lb = layer_of(a), layer_of(b)
            if la and lb and lb[0] > la[0]:
                out.append(f"{a} -> {b}: upward ({la[1]} imports {LAYERS[lb[0]][0]})")
            elif la and lb and la[0] == lb[0] and LAYERS[la[0]][0] == "parts" and la[1] != lb[1]:
                out.append(f"{a} -> {b}: between parts ({la[1]} imports {lb[1]})")
            for importer, imported, why in FORBIDDEN:
                if _inside(a, importer) and _inside(b, imported):
                    out.append(f"{a} -> {b}: forbidden ({why})")
    return out


def summary(root: Path) -> dict[str, int]:
    arrows = graph(root)
    found = cycles(arrows)
    return {"modules": len(arrows), "arrows": sum(map(len, arrows.values())), "cycles": len(found),
            "modules in cycles": sum(map(len, found)), "violations": len(violations(arrows)),
            "unlisted": sum(layer_of(m) is None for m in arrows)}


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    arrows = graph(root)
    for key, value in summary(root).items():
        print(f"{key}: {value}")
    for c in cycles(arrows):
        print("cycle:", " ".join(c))
    for v in violations(arrows):
        print("violation:", v)
