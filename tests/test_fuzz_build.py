"""The libFuzzer harnesses in fuzz/ still build and replay their saved
findings: they link the parsers' objects by name, so a new module that
those objects need breaks them without any other test noticing (the
fuzz_cf link lost io.c and priv.c that way)."""
import os
import shutil
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fuzz_targets_build_and_replay_the_findings():
    if not shutil.which("clang"):
        pytest.skip("no clang")
    for goal in ("all", "repro"):
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C",
                            os.path.join(TOP, "fuzz"), goal],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for t in ("cf", "addr", "mime", "data"):
        assert os.access(os.path.join(TOP, "fuzz", "build", "fuzz_" + t),
                         os.X_OK)
