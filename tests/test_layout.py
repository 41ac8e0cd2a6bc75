"""The package's shape: documented import paths, layers without cycles, a cheap start-up.

In the style of typer's ``tests/test_rich_import.py``: a fresh interpreter runs the entry
point and reports which heavy modules got imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES

PACKAGE = ROOT / "rnngrad"

# Lower layers first; a module may import its own layer and those before it, never after.
LAYERS = [
    ("rnngrad._version", "rnngrad._lazy", "rnngrad.errors", "rnngrad.limits", "rnngrad.report"),
    ("rnngrad.io",),
    ("rnngrad.cells",),
    ("rnngrad.conventions",),
    ("rnngrad.probes",),
    ("rnngrad.inspection", "rnngrad.spectrum", "rnngrad.bptt", "rnngrad.surface",
     "rnngrad.lyapunov"),
    ("rnngrad.api", "rnngrad.gate", "rnngrad.testing", "rnngrad.train", "rnngrad.lightning"),
    ("rnngrad.render", "rnngrad.plots"),
    ("rnngrad.cli", "rnngrad.__main__"),
]


def layer_of(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and the docs")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every rnngrad module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("rnngrad"):
                found.add(node.module)
                for alias in node.names:  # `from rnngrad.cli import bptt` names a module
                    candidate = f"{node.module}.{alias.name}"
                    if _is_module(candidate):
                        found.add(candidate)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("rnngrad")}
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package uses absolute imports")
    return found


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        # a module's import of its own packages is Python's import machinery, not a dependency
        edges[name] = {target for target in imports_of(path)
                       if target != "rnngrad" and not name.startswith(target + ".")}
    return edges


def test_every_import_points_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        if module == "rnngrad":
            continue  # the curated API names everything, lazily
        for target in targets:
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_including_lazy_ones():
    edges = graph()
    edges.pop("rnngrad", None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_every_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80, f"{init}: the docstring should say what lives there"
        if init.parent.parent == PACKAGE and init.parent.name not in ("plots",):
            assert "import" in doc, f"{init}: say what the subpackage may import"


DOCUMENTED = [
    "import rnngrad; assert callable(rnngrad.analyze) and callable(rnngrad.check)",
    "import rnngrad; assert callable(rnngrad.bptt) and callable(rnngrad.spectrum)",
    "import rnngrad; assert rnngrad.BpttOptions is rnngrad.bptt.BpttOptions",
    "from rnngrad.bptt import BpttOptions, bptt; assert callable(bptt)",
    "from rnngrad.probes import ProbeSpec; import rnngrad.probes; rnngrad.probes.ProbeSpec()",
    "from rnngrad.testing import assert_healthy",
    "from rnngrad.plots import save_plot, spectrum_figure, bptt_figure, check_figure",
    "import rnngrad; rnngrad.inspect; rnngrad.load; rnngrad.RnngradError; rnngrad.CheckReport",
    "import rnngrad.bptt.analysis, rnngrad; assert callable(rnngrad.bptt)",
    "import rnngrad; assert callable(rnngrad.surface) and rnngrad.SurfaceOptions().lr > 0",
    "from rnngrad.surface import SurfaceOptions, loss_function, surface; assert callable(surface)",
    "import rnngrad.surface.analysis, rnngrad; assert callable(rnngrad.surface.loss_function)",
    "from rnngrad.plots import surface_figure",
    "import rnngrad; assert callable(rnngrad.lyapunov) and rnngrad.lyapunov.LyapunovOptions",
    "from rnngrad.lyapunov import LyapunovOptions, lyapunov; assert callable(lyapunov)",
    "import rnngrad; assert rnngrad.LyapunovOptions is rnngrad.lyapunov.LyapunovOptions",
    "from rnngrad.plots import lyapunov_figure, plot_lyapunov",
]


@pytest.mark.parametrize("code", DOCUMENTED)
def test_documented_import_paths(code):
    exec(code, {})


def test_pytest_plugin_entry_point_loads():
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "rnngrad"]
    module = plugin.load()
    assert hasattr(module, "rnn_healthy")


def _imported_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy modules it imported."""
    probe = (f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\n"
             "import json; print(json.dumps(sorted(m for m in ('torch', 'typer', 'rich', "
             "'numpy', 'matplotlib', 'h5py', 'onnx') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_rnngrad_is_cheap():
    assert _imported_after("import rnngrad") == []


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["bptt", "--help"],
                                  ["surface", "--help"], ["surface", "x.pt", "--lr", "no"],
                                  ["spectrum", "--help"], ["check", "--help"],
                                  ["lyapunov", "--help"], ["lyapunov", "x.pt", "--k", "zero"],
                                  ["inspect", "--help"], ["bptt", "x.pt", "--batch", "zero"]])
def test_cli_start_up_never_imports_torch(argv):
    imported = _imported_after(f"from rnngrad.cli import main; main({argv!r})")
    assert "torch" not in imported and "numpy" not in imported
    if argv == ["--version"]:
        assert imported == []  # answered before typer is imported


@pytest.mark.slow
@pytest.mark.parametrize("sample", ["elman_exploding.safetensors", "elman_relu_npz.npz"])
def test_inspect_of_safetensors_and_npz_runs_without_torch(sample):
    imported = _imported_after(
        f"from rnngrad.cli import main; main(['inspect', {str(SAMPLES / sample)!r}, '-q'])")
    assert "torch" not in imported


def test_every_approx_in_the_tests_has_an_explicit_tolerance():
    loose = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "approx"
                    and not {k.arg for k in node.keywords} & {"rel", "abs"}):
                loose.append(f"{path.name}:{node.lineno}")
    assert not loose, f"pytest.approx without rel= or abs=: {loose}"
