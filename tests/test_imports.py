"""The package's architecture: every module imports on its own, and the import graph, lazy
imports inside functions included, has no cycle and no arrow from a lower layer to a higher
one."""
import ast
import os
import re
import subprocess
import sys

import pytest

import ebm_jax

PACKAGE = os.path.dirname(ebm_jax.__file__)


def modules() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(PACKAGE))
                dotted = rel[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = os.path.join(folder, name)
    return found


def imports_of(path: str, names: set[str]) -> set[str]:
    """The package modules a file imports anywhere in it (``from a import b`` counts as
    ``a.b`` where that is a module, else as ``a``)."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in names:
                    out.add(full)
                elif node.module in names:
                    out.add(node.module)
    return out


def import_graph() -> dict[str, set[str]]:
    """Each package module -> the package modules it imports (lazy imports included)."""
    mods = modules()
    return {m: imports_of(path, set(mods)) - {m} for m, path in mods.items()}


# The package's layers, lowest first: a module imports from its own layer and the ones below,
# never from one above. The loop and the evaluation modes use the families, so the families sit
# below them; the families use the core's schedules and samplers and the runtime's meshes.
# plotting.py draws arrays and imports nothing of the package, so it sits at the bottom; the
# package's __init__ gathers the public API from every layer, so it sits on top.
LAYERS = (
    ("core", "models", "data", "configs", "plotting"),
    ("runtime",),
    ("families",),
    ("training", "evaluation"),
    ("cli",),
    ("__init__",),
)


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of a module's folder below ``ebm_jax`` (``__init__``: the
    package itself)."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "__init__"
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"{module}: {name!r} is in no layer; add it to LAYERS")


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps
                  if layer_of(b) > layer_of(a))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # The check can fail: a cycle through a lazy import is found.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    graph = import_graph()
    assert {layer_of(m) for m in graph} == set(range(len(LAYERS)))
    assert not upward_arrows(graph), upward_arrows(graph)
    # The check can fail: a family importing the loop's optimizer, or a core module the
    # package's public API, runs upwards; the loop importing a family does not.
    assert upward_arrows({"ebm_jax.families.ebm": {"ebm_jax.training.optim"},
                          "ebm_jax.core.sampler": {"ebm_jax"},
                          "ebm_jax.training.trainer": {"ebm_jax.families.base"}}) == [
        "ebm_jax.core.sampler -> ebm_jax", "ebm_jax.families.ebm -> ebm_jax.training.optim"]
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("ebm_jax.newfolder.module")


def test_no_module_is_over_400_lines():
    long = {m: n for m, path in modules().items() if (n := len(open(path).readlines())) > 400}
    assert not long, long


BRANCH = re.compile(r"""family\w*(\.name)?\s*(==|!=|\bin\b)\s*[(\[]?\s*["']""")


def test_no_module_branches_on_the_family_name():
    """Only the registry maps ``model.family`` to code; nothing compares it with a name. (The
    data package is left out: there a tfds "family" is a data set's base name.)"""
    offenders = [m for m, path in modules().items()
                 if m != "ebm_jax.families.registry" and not m.startswith("ebm_jax.data")
                 and BRANCH.search(open(path).read())]
    assert not offenders, offenders
    assert BRANCH.search('if model.family == "generator":')
    assert BRANCH.search("family in ('ebm', 'latent_ebm')")
    assert BRANCH.search('if run.family.name == "latent_ebm":')


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    names = sorted(modules())
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(name)\n"
            "    for m in [m for m in sys.modules if m.startswith('ebm_jax')]:\n"
            "        del sys.modules[m]\n"
            "print('ok', len(sys.argv) - 1)")
    # One interpreter per module would take minutes; each import starts from a clean slate of
    # the package's modules instead (third-party ones stay loaded), so a module that relies on
    # another package module having been imported first fails here.
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", str(len(names))]


@pytest.mark.parametrize("module", ["ebm_jax.plotting", "ebm_jax.evaluation.runner"])
def test_importing_the_plotting_code_leaves_the_matplotlib_backend_alone(module, tmp_path):
    code = ("import matplotlib; matplotlib.use('svg'); import importlib; "
            f"importlib.import_module({module!r}); "
            "from ebm_jax import plotting; import numpy as np; "
            "plotting.save_toy_plot(np.zeros((4, 2)), 'toy.png'); "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("svg")
    assert os.path.getsize(tmp_path / "toy.png") > 0
