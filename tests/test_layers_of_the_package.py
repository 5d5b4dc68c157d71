"""The package's layers depend one way: the method (stylejax/_src) imports neither the
weights I/O, the file helpers, the command line nor the benchmark; the weights I/O never
imports the command line; nothing imports torch at module level; scripts use the public
API (and the command line's figure plumbing), never stylejax._src."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "stylejax")


def _modules(folder, recursive=True):
    for directory, subdirs, files in os.walk(folder):
        if not recursive:
            subdirs.clear()
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _imports(path, top_level_only=False):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


METHOD = list(_modules(os.path.join(PACKAGE, "_src"), recursive=False))
WEIGHTS = list(_modules(os.path.join(PACKAGE, "_src", "weights")))


@pytest.mark.parametrize("path", METHOD, ids=os.path.basename)
def test_the_method_imports_no_outer_layer(path):
    allowed_weights = {"stylejax._src.weights.weights_file", "stylejax._src.weights.weights_file.LoadedWeights"}
    for module in _imports(path):
        assert not module.startswith(("stylejax.cli", "stylejax.bench", "stylejax._src.files")), module
        if module.startswith("stylejax._src.weights"):
            assert module in allowed_weights, module
        assert module not in ("stylejax._src.errors.UserError", "argparse"), module


@pytest.mark.parametrize("path", WEIGHTS, ids=os.path.basename)
def test_the_weights_io_imports_no_command_line(path):
    assert not [m for m in _imports(path) if m.startswith(("stylejax.cli", "stylejax.bench"))]


@pytest.mark.parametrize("path", list(_modules(PACKAGE)), ids=lambda p: os.path.relpath(p, PACKAGE))
def test_no_module_imports_torch_when_imported(path):
    assert not [m for m in _imports(path, top_level_only=True) if m.split(".")[0] == "torch"]


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(os.path.join(ROOT, "scripts"))
                                        if n.startswith(("fig", "bench")) and n.endswith(".py")))
def test_figure_and_bench_scripts_use_the_public_api(name):
    used = list(_imports(os.path.join(ROOT, "scripts", name)))
    assert not [m for m in used if m.startswith(("stylejax._src", "stylejax.bench"))], used
    assert not [m for m in used if m.startswith("stylejax.cli") and m != "stylejax.cli"
                and not m.startswith("stylejax.cli.figures")], used


def test_the_public_api_is_explicit():
    import stylejax
    import stylejax.colour
    import stylejax.weights

    for module in (stylejax, stylejax.weights, stylejax.colour):
        assert all(hasattr(module, name) for name in module.__all__)
    assert not {"UserError", "resolve_config", "TransferConfig", "run_transfer"} & set(stylejax.__all__)
    assert {"transfer", "run_sweep", "Member", "product", "PRESETS", "balance_for_ratio"} <= set(stylejax.__all__)
