"""Dialogue transcripts: client lines against expected server replies,
played against postmaster over a pipe (as `swaks --pipe` would).

Each tests/transcripts/*.t file has a [config] part (postmaster.cf text;
@TMP@ is a fresh directory) and a [dialogue] part of lines:

  C: text        client line, sent with CRLF
  R: b'...'      raw client bytes (a Python bytes literal), nothing added
  S: text        the next server reply line, exactly
  S~ regex       the next server reply line, matching the regex fully
  E:             the server closes the connection here
  F: path        after the session, this file (glob under @TMP@) exists
  N: path        after the session, nothing matches this glob
  M: path=text   after the session, the one file matching path contains text
  Q: n           after the session and the delivery it started, the spool
                 holds n messages

Consecutive C:/R: lines are sent together (pipelined); the S: lines after
them are then read one by one.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
POSTMASTER = os.path.abspath(os.environ.get("POSTMASTER", "./postmaster"))
FILES = sorted(glob.glob(os.path.join(HERE, "transcripts", "*.t")))


def parse(path, tmp):
    text = open(path, encoding="utf-8").read().replace("@TMP@", tmp)
    cfg, dialogue = text.split("[dialogue]\n", 1)
    cfg = cfg.split("[config]\n", 1)[1]
    steps = []
    for n, line in enumerate(dialogue.split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        tag, rest = line[:2], line[3:] if len(line) > 2 else ""
        steps.append((tag, rest, n))
    return cfg, steps


class Reader:
    def __init__(self, proc):
        self.proc = proc
        self.buf = b""

    def line(self, timeout=10):
        deadline = time.time() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        while b"\r\n" not in self.buf:
            if time.time() > deadline:
                raise AssertionError("no reply within %ss; got %r" % (timeout, self.buf))
            try:
                chunk = self.proc.stdout.read(65536)
            except BlockingIOError:
                chunk = None
            if chunk is None:
                time.sleep(0.005)
                continue
            if chunk == b"":
                if self.buf:
                    raise AssertionError("reply without CRLF: %r" % self.buf)
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "backslashreplace")


def run_transcript(path):
    tmp = tempfile.mkdtemp(prefix="pm-t-")
    os.chmod(tmp, 0o1777)
    try:
        cfg, steps = parse(path, tmp)
        cfpath = os.path.join(tmp, "postmaster.cf")
        with open(cfpath, "w") as f:
            f.write(cfg)
        args = [POSTMASTER, "--config=" + cfpath]
        if os.geteuid() == 0:
            args.append("--core-user-id=nobody")
        if "spool-directory" not in cfg:
            spool = os.path.join(tmp, "spool")
            os.mkdir(spool)
            os.chmod(spool, 0o1777)
            args.append("--core-spool-directory=" + spool)
        proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rd = Reader(proc)
        pending = b""
        checks = []
        try:
            for tag, rest, n in steps:
                where = "%s:%d" % (os.path.basename(path), n)
                if tag == "C:":
                    pending += rest.encode("utf-8") + b"\r\n"
                    continue
                if tag == "R:":
                    pending += eval(rest)  # a bytes literal from our own file
                    continue
                if pending:
                    try:
                        proc.stdin.write(pending)
                        proc.stdin.flush()
                    except BrokenPipeError:
                        pass
                    pending = b""
                if tag in ("S:", "S~"):
                    got = rd.line()
                    assert got is not None, "%s: connection closed, expected %r" % (where, rest)
                    if tag == "S:":
                        assert got == rest, "%s: expected %r, got %r" % (where, rest, got)
                    else:
                        assert re.fullmatch(rest, got), "%s: expected /%s/, got %r" % (where, rest, got)
                elif tag == "E:":
                    got = rd.line()
                    assert got is None, "%s: expected the end, got %r" % (where, got)
                elif tag in ("F:", "N:", "M:", "Q:"):
                    checks.append((tag, rest, where))
                else:
                    raise AssertionError("%s: unknown tag %r" % (where, tag))
            if pending:
                try:
                    proc.stdin.write(pending)
                except BrokenPipeError:
                    pass
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read().decode("utf-8", "replace")
        assert "runtime error" not in err and "Sanitizer" not in err, err
        for tag, rest, where in checks:
            if tag == "Q:":
                held = [f for f in os.listdir(os.path.join(tmp, "spool"))
                        if re.fullmatch(r"[0-9A-F]{18}", f)]
                assert len(held) == int(rest), "%s: the spool holds %r" % (where, held)
            elif tag == "M:":
                pat, want = rest.split("=", 1)
                found = glob.glob(pat)
                assert len(found) == 1, "%s: %s matches %r" % (where, pat, found)
                data = open(found[0], "rb").read().decode("utf-8", "backslashreplace")
                want = want.encode().decode("unicode_escape")
                assert want in data, "%s: %r not in %r" % (where, want, data)
            else:
                found = glob.glob(rest)
                if tag == "F:":
                    assert found, "%s: nothing matches %s" % (where, rest)
                else:
                    assert not found, "%s: %s exists: %r" % (where, rest, found)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f) for f in FILES])
def test_transcript(path):
    run_transcript(path)
