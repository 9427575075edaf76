"""A small milter for the tests: the milter protocol, version 6, spoken
over a unix socket from a thread. It records every packet it receives
(decoded: macros, headers, body) and answers from a script: for each
command byte, the packets to send back (the default is continue, and
accept at the end of the message)."""
import os
import socket
import struct
import threading


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd.encode() + data


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b


class Milter:
    """path: a unix socket's, or (address, port) for TCP.
    script: {cmd: [(reply_cmd, data), ...]}; a cmd of "E" (end of
    body) may list modifications before its final reply. actions and
    protocol are what the OPTNEG reply says; macros: {class: "names"}.
    hang=True accepts connections and never answers; hang="R" (a command)
    answers everything but that command."""

    def __init__(self, path, script=None, actions=0x1ff,
                 protocol=0, macros=None, hang=False):
        self.path = path
        self.script = script or {}
        self.actions = actions
        self.protocol = protocol
        self.macros = macros or {}
        self.hang = hang
        self.events = []   # (cmd, decoded data)
        self.body = bytearray()
        self.chunks = []
        if isinstance(path, tuple):  # (address, port): inet
            self.sock = socket.socket(socket.AF_INET6 if ":" in path[0]
                                      else socket.AF_INET)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(path)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            os.chmod(path, 0o666)
        self.sock.listen(16)
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        if not isinstance(self.path, tuple):
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def cmds(self):
        return [e[0] for e in self.events]

    def macro(self, name):
        """The last value a macro had."""
        v = None
        for cmd, d in self.events:
            if cmd == "D" and name in d[1]:
                v = d[1][name]
        return v

    def one(self, c):
        try:
            while True:
                n = struct.unpack(">I", recv_exact(c, 4))[0]
                data = recv_exact(c, n)
                cmd, data = chr(data[0]), data[1:]
                self.record(cmd, data)
                if self.hang is True or self.hang == cmd:
                    continue
                self.answer(c, cmd, data)
                if cmd == "Q":
                    return
        except (EOFError, OSError):
            return
        finally:
            c.close()

    def record(self, cmd, data):
        if cmd == "D":
            parts = data[1:].split(b"\0")
            d = dict(zip([p.decode() for p in parts[0::2]],
                         [p.decode() for p in parts[1::2]]))
            self.events.append((cmd, (chr(data[0]), d)))
        elif cmd == "B":
            self.body += data
            self.chunks.append(len(data))
            self.events.append((cmd, len(data)))
        elif cmd in "LHMRC":
            self.events.append((cmd, [p.decode("latin-1")
                                      for p in data.split(b"\0")[:-1]]))
        else:
            self.events.append((cmd, data))

    def answer(self, c, cmd, data):
        if cmd == "O":
            extra = b""
            for cls, names in self.macros.items():
                extra += struct.pack(">I", cls) + names.encode() + b"\0"
            c.sendall(packet("O", struct.pack(">III", 6, self.actions,
                                              self.protocol) + extra))
            return
        if cmd in "DAQK":
            return
        if cmd == "L" and self.protocol & (1 << 7):
            return
        replies = self.script.get(cmd)
        if replies is None:
            replies = [("a", b"")] if cmd == "E" else [("c", b"")]
        for rc, rd in replies:
            if rc == "close":  # the milter breaks off
                raise EOFError
            c.sendall(rd if rc == "raw" else packet(rc, rd))
