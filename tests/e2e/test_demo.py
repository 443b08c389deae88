"""`filmroll demo`: the newcomer's first command runs the whole story and ends cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_connects_syncs_and_catches_a_revocation(tmp_path):
    result = subprocess.run([sys.executable, "-m", "filmroll", "demo", "--accounts", "3", "--duration", "14",
                             "--directory", str(tmp_path)], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "COLUMNS": "220"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert len(re.findall(r"connected @\w+ through OAuth", out)) == 3
    assert "synced_full 3" in out and "needs_reauth 1" in out
    assert re.search(r"password", out)
    assert (tmp_path / "filmroll.db").exists() and oct((tmp_path / "filmroll.keys").stat().st_mode & 0o777) == "0o600"
    # Media counts in the final table match what Instagram reports: "n / n".
    pairs = re.findall(r"(\d+) / (\d+)", out)
    assert pairs and all(a == b for a, b in pairs[-3:])


def test_the_demo_cleans_up_after_itself_and_says_what_next(tmp_path):
    result = subprocess.run([sys.executable, "-m", "filmroll", "demo", "--accounts", "1", "--duration", "3"],
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, "COLUMNS": "220", "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.glob("filmroll-demo-*")) == []  # its temporary directory is gone
    assert "Next, try:" in result.stdout and "filmroll serve" in result.stdout.split("Next, try:")[1]
