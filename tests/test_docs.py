"""Every Python code block in the docs runs, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = [(path.name, i, block)
          for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
          if "_build" not in path.parts
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL))]


@pytest.mark.parametrize("name, index, code", BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_doc_code_block_runs(name, index, code, synthetic_path):
    exec(compile(code, f"{name}[{index}]", "exec"), {})


def test_docs_have_code_blocks():
    assert {"README.md", "body.md", "forward.md", "mesh_decoders.md", "render_heads.md",
            "metrics.md", "posturehmr.md", "data.md", "fkschedule.md", "train_your_data.md",
            "protocols.md"} <= {name for name, _, _ in BLOCKS}
