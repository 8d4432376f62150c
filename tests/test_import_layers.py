"""Imports go one way, in the order the data flows.

The layers, lowest first (a module may import from its own layer and the ones before it):

0. base      errors, _registry, _io, _cpus, _log, _data, _versions, _outputs, _checks, targets
1. nn        torch modules (blocks, networks, the elastic supernet, mixed and single ops)
2. spaces    archs, genomes, OpSpecs and costs; spaces build their networks from nn
3. compiler  torch → ONNX → TVM Relax → library; MetaSchedule tuning and databases
4. runtime   where compiled code runs and is timed; Latency and the measurement protocol
5. profile   operator tables, whole networks and held-out sets, measured through 3 and 4
6. predict   latency predictors (table, calibrated, few-shot) and accuracy predictors
7. train     supernet training and evaluation (fits the accuracy predictors of 6)
8. search    objectives, constraints and strategies (gradient ones train supernets: 7)
9. export    bundles: subnet with its weights → ONNX → library → manifest
10. deploy   the closed loop over 5-9
11. farm     a local TVM RPC tracker and servers; spreading work over tracked devices
12. api      the front door (``hwnas.api``, re-exported by ``hwnas``)
13. cli      ``hwnas.commands`` and ``hwnas.cli``: argparse over the front door

This differs from DESIGN.md's first sketch in one place: ``train`` comes before ``search``,
because the gradient strategies (gumbel, proxyless) train mixed supernets with the training
code, and training itself needs nothing from search.

Every import is counted, also those inside functions: a lazy import is still a dependency.
Within a layer, modules may import each other, but never in a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hwnas"

LAYERS = [
    ("base", ["hwnas.errors", "hwnas._registry", "hwnas._io", "hwnas._cpus", "hwnas._log",
              "hwnas._data", "hwnas._versions", "hwnas._outputs", "hwnas._checks",
              "hwnas.targets"]),
    ("nn", ["hwnas.nn"]), ("spaces", ["hwnas.spaces"]), ("compiler", ["hwnas.compiler"]),
    ("runtime", ["hwnas.runtime"]), ("profile", ["hwnas.profile"]),
    ("predict", ["hwnas.predict"]), ("train", ["hwnas.train"]), ("search", ["hwnas.search"]),
    ("export", ["hwnas.export"]), ("deploy", ["hwnas.deploy"]), ("farm", ["hwnas.farm"]),
    ("api", ["hwnas.api"]), ("cli", ["hwnas.commands", "hwnas.cli", "hwnas.__main__"]),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def layer_of(module: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"module {module} belongs to no layer; add it to LAYERS")


def _resolve(name: str) -> str | None:
    """The hwnas module an import names (``from hwnas import _data`` names ``hwnas._data``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
        for n in names:
            if n.startswith("hwnas"):
                target = _resolve(n)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {m: imports_of(m) for m in MODULES if m != "hwnas"}


def test_every_module_has_a_layer():
    for m in GRAPH:
        layer_of(m)


def test_no_upward_imports():
    bad = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
           for m, deps in GRAPH.items() for d in sorted(deps)
           if d != "hwnas" and layer_of(d) > layer_of(m)]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_only_the_front_door_imports_the_package_root():
    bad = [m for m, deps in GRAPH.items() if "hwnas" in deps and layer_of(m) < layer_of("hwnas.api")]
    assert not bad, f"modules below the front door import 'hwnas' itself: {bad}"


def test_no_import_cycles():
    def parent_chain(m: str) -> set[str]:     # a package's __init__ runs before its modules
        return {m.rsplit(".", i)[0] for i in range(1, m.count("."))}

    graph = {m: {d for d in deps if d != "hwnas" and d not in parent_chain(m)}
             for m, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                cycle = visit(d)
                if cycle:
                    return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_metaschedule_is_imported_in_one_module():
    """TVM moves MetaSchedule between releases: only ``compiler/_metaschedule.py`` names it."""
    importers = sorted(m for m, p in MODULES.items()
                       if "meta_schedule" in p.read_text(encoding="utf-8")
                       and any(line.lstrip().startswith(("import ", "from "))
                               and "meta_schedule" in line and "tvm" in line
                               for line in p.read_text(encoding="utf-8").splitlines()))
    assert importers == ["hwnas.compiler._metaschedule"]
