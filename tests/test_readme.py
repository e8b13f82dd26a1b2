"""The README's Python example runs as a user runs it, after `pip install .`: from the repository
root (where no source folder may shadow the installed package) and from anywhere else."""
import re
import subprocess
import sys

import h5py
import pytest

from conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    after = text.index("From Python, the plans take a plain RunEngine:")
    return re.search(r"```python\n(.*?)```", text[after:], re.S).group(1)


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_the_readme_python_example_runs(where, tmp_path):
    cwd = ROOT if where == "root" else tmp_path
    data = cwd / "data"
    before = set(data.glob("*.h5"))
    try:
        done = subprocess.run([sys.executable, "-c", readme_example()], cwd=cwd, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        record, = set(data.glob("*.h5")) - before
        with h5py.File(record, "r") as f:
            assert f["entry/exit_status"][()].decode() == "success" and f["entry/num_events/pulse"][()] == 3
    finally:
        for made in set(data.glob("*.h5")) - before:  # the repository keeps nothing the test made
            made.unlink()
        if not before and data.exists() and not any(data.iterdir()):
            data.rmdir()
