"""Imports run one way: the layer order of pyproject.toml's import-linter contracts holds (no
upward import, no import between siblings of a layer, no cycle, no private module used outside its
package), it covers every part of kinediff, and it is the order docs/concepts.md draws."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kinediff"
#: Heavy optional dependencies: the only imports allowed inside a function.
OPTIONAL = ("av", "h5py", "onnx", "onnxruntime", "onnxscript", "numba", "pytorch3d", "bpy", "torchvision",
            "smplx", "matplotlib", "trimesh", "timm", "scipy.optimize", "scipy.spatial",
            "torch.utils.tensorboard", "tensorboard")


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [[name.strip().removeprefix("kinediff.") for name in layer.split("|")]
            for layer in layers]


def test_the_contracts_hold():
    # in its own process: import-linter's command configures logging with dictConfig, which
    # disables every logger that exists (kinediff's included) for the tests that run after it
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # 0: every contract kept


def test_the_layers_name_every_part_of_kinediff():
    named = {name for layer in _layers() for name in layer}
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert parts == named


def test_docs_draw_the_same_layers():
    text = (ROOT / "docs" / "concepts.md").read_text()
    block = re.search(r"<!-- layers -->\s*```text\n(.*?)```", text, re.DOTALL)
    assert block, "docs/concepts.md lost its layer diagram"
    drawn = [[name.strip() for name in line.split("|")]
             for line in block.group(1).splitlines() if line.strip()]
    assert drawn == _layers()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_inside_functions_are_heavy_optional_dependencies(path):
    """An import inside a function only for a heavy optional dependency (with a comment). Two
    exceptions: the root package's ``__getattr__`` (PEP 562): ``kinediff.PostureHMR`` is imported
    on first use, so that importing one component never imports the whole composition; and the
    command line (``kinediff/cli.py``, the top layer), whose commands import their part of kinediff
    (and Pillow) when they run, so that ``kinediff --help`` does not load torch."""
    if path == PACKAGE / "__init__.py":
        return
    allowed = OPTIONAL + (("kinediff", "PIL") if path == PACKAGE / "cli.py" else ())
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    names = [inner.module or ""]
                elif isinstance(inner, ast.Import):
                    names = [a.name for a in inner.names]
                else:
                    continue
                found += [f"line {inner.lineno}: {n}" for n in names
                          if not any(n == o or n.startswith(o + ".") for o in allowed)]
                # the comment saying why: on the import's line or a line of the function before it
                if not any("#" in line for line in lines[node.lineno - 1:inner.lineno]):
                    found.append(f"line {inner.lineno}: {names[0]} (no comment says why)")
    assert not found


def test_the_command_line_answers_help_without_loading_torch():
    """``kinediff --help`` imports the command line alone: no torch, no component."""
    code = ("import sys, kinediff.cli; kinediff.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('kinediff.')))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    # kinediff.core.threads: the OpenMP spin set before torch loads (standard library only)
    assert ast.literal_eval(done.stdout) == ["kinediff.apps", "kinediff.apps.options", "kinediff.cli",
                                             "kinediff.core", "kinediff.core.threads",
                                             "kinediff.core.version"]
