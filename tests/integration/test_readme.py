"""The README's library example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.fixtures import REPO


def test_readme_python_example_runs() -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "the README has a Python example"
    proc = subprocess.run(
        [sys.executable, "-c", blocks[0]], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "('config.json', 'weights.bin')" in proc.stdout
    assert "('config.json',)" in proc.stdout
