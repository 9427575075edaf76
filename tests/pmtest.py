"""What the pytest suites share: the binary under test, whether we are
root, finding a tool, sanitizer reports, free ports and removing a test
directory. Imported by the test files (pytest puts tests/ on sys.path).

POSTMASTER names the binary under test (tests/run-suites sets it to the
normal or the sanitizer build).
"""
import os
import shutil
import socket

import pytest

POSTMASTER = os.path.abspath(os.environ.get("POSTMASTER", "./postmaster"))
ROOT = os.geteuid() == 0
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
             "runtime error:", "UndefinedBehaviorSanitizer")


def tool(name):
    """The path of an installed program, or a skip."""
    path = shutil.which(name, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        pytest.skip("%s is not installed" % name)
    return path


def no_sanitizer_report(text, what):
    for mark in SANITIZER:
        assert mark not in text, "%s: sanitizer report:\n%s" % (what, text)


def remove_tree(path):
    # a test may have made directories read-only for the session user
    for d, dirs, _ in os.walk(path):
        for x in dirs:
            try:
                os.chmod(os.path.join(d, x), 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)
    assert not os.path.exists(path), "cannot remove %s" % path


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
