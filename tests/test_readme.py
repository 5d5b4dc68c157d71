"""The README's library example runs as written (its first ```python block)."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


@pytest.mark.slow  # a whole random-preset transfer: about 40 s, most of it compiling
def test_readme_python_block_runs(capsys):
    with open(README, encoding="utf-8") as handle:
        blocks = re.findall(r"^```python\n(.*?)^```", handle.read(), flags=re.S | re.M)
    assert blocks, "README.md has no ```python block"
    exec(compile(blocks[0], "README.md (python block)", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip()
