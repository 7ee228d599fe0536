"""The import floors of docs/architecture.md: every module of minigrad imports only its own floor
or the floors below, and no chain of imports leads back to where it started.

Every module is parsed (``ast``), so imports inside functions count as much as those at the
top. Importing ``minigrad.quant.qparams`` from outside ``minigrad.quant`` runs
``minigrad/quant/__init__.py`` too, so it counts as an import of that package as well.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parents[1] / "minigrad"

# Lowest first. A module belongs to the first floor one of whose names is it or a package
# holding it; the package's own __init__ (the public API) is the top floor.
FLOORS = [
    ("base", ["minigrad.backend", "minigrad.random", "minigrad.report", "minigrad.dtypes"]),
    ("engine", ["minigrad.autograd"]),
    ("ops", ["minigrad.ops"]),
    ("tensor", ["minigrad.tensor", "minigrad.creation"]),
    ("tools", ["minigrad.serialization", "minigrad.metrics", "minigrad.testing",
               "minigrad.anomaly", "minigrad.profiler", "minigrad.viz", "minigrad.timing",
               "minigrad.plot", "minigrad.cli"]),
    ("nn", ["minigrad.nn", "minigrad.models"]),
    ("training", ["minigrad.optim", "minigrad.data", "minigrad.train", "minigrad.sensitivity"]),
    ("methods", ["minigrad.prune", "minigrad.quant", "minigrad.distill", "minigrad.parallel",
                 "minigrad.tune"]),
    ("pipelines", ["minigrad.compress", "minigrad.onnx"]),
    ("api", ["minigrad"]),
]
# Packages on one floor that must not import each other (each stands on the floors below).
INDEPENDENT = ["minigrad.prune", "minigrad.quant", "minigrad.distill", "minigrad.parallel"]


def module_names():
    """Dotted name -> path of every module in the package."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def resolve(name):
    """The module a dotted name refers to: itself, or the module defining that attribute."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(module):
    """The minigrad modules ``module`` imports (anywhere in it), with the line of each."""
    found = {}
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "minigrad":
                continue
            target = resolve(name)
            found.setdefault(target, node.lineno)
            # a module of another package also runs that package's __init__ (not the root's)
            package = target.rpartition(".")[0]
            while package.count(".") >= 1 and not (module + ".").startswith(package + "."):
                found.setdefault(package, node.lineno)
                package = package.rpartition(".")[0]
    found.pop(module, None)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def floor_of(module):
    for level, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "minigrad"):
            return level
    assert module == "minigrad", f"{module} is on no floor: add it to FLOORS"
    return len(FLOORS) - 1


def test_every_module_is_on_a_floor():
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_floor_above_its_own(module):
    own = floor_of(module)
    upward = [f"{module} ({FLOORS[own][0]}) imports {target} ({FLOORS[floor_of(target)][0]}) "
              f"at line {line}" for target, line in GRAPH[module].items()
              if floor_of(target) > own]
    assert not upward, "\n".join(upward)


def package_of(module):
    return next((p for p in INDEPENDENT if module == p or module.startswith(p + ".")), None)


def test_the_compression_methods_do_not_import_each_other():
    crossing = [f"{module} imports {target} at line {line}"
                for module, targets in GRAPH.items() for target, line in targets.items()
                if package_of(module) and package_of(target)
                and package_of(module) != package_of(target)]
    assert not crossing, "\n".join(crossing)


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None. Iterative DFS."""
    state = {}  # module -> "open" while on the current path, "done" after
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [], [(start, iter(sorted(graph[start])))]
        state[start] = "open"
        path.append(start)
        while stack:
            module, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                state[path.pop()] = "done"
            elif state.get(target) == "open":
                return path[path.index(target):] + [target]
            elif target not in state:
                state[target] = "open"
                path.append(target)
                stack.append((target, iter(sorted(graph.get(target, ())))))
    return None


def test_there_is_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_prints_the_chain():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_imports_inside_functions_are_seen():
    # backend.cupy_module imports CuPy inside a function; the kernels import nothing upward
    assert "minigrad.quant" not in GRAPH["minigrad.backend.numpy_ref"]
    assert "minigrad.backend.fixed_point" in GRAPH["minigrad.backend.numpy_ref"]
    assert "minigrad.profiler" in GRAPH["minigrad"]  # imported inside an if at the top


def test_outside_the_backend_kernels_are_reached_only_through_the_seam():
    sets = ("minigrad.backend.numpy_ref", "minigrad.backend.numba_cpu", "minigrad.backend.cupy_gpu")
    direct = [f"{module} imports {target} at line {line}" for module, targets in GRAPH.items()
              if not module.startswith("minigrad.backend") for target, line in targets.items()
              if target.startswith(sets)]
    assert not direct, "\n".join(direct) + "\n(call backend.kernels(device) instead)"
