"""Local submission by unprivileged users (SPEC 2, issue 12.2): a user's
`postmaster --inject` hands the message to the submit socket, a unix
socket served one connection at a time by systemd-socket-activate
--accept (as postmaster-submit.socket does) on a scratch path. The
session learns the user from SO_PEERCRED: the sender is that user's
address unless trusted-users lets it choose, it may relay, and it never
reaches the spool itself. A section that listens on a unix socket serves
nothing else, and a network section serves no unix socket."""
import os
import pwd
import re
import socket
import subprocess

import pytest

from pmtest import (POSTMASTER, ROOT, Tcpserver, no_sanitizer_report,
                    remove_tree, scratch_dir, tool, wait_for)

pytestmark = pytest.mark.skipif(not ROOT, reason="needs root: a test user "
                                "(useradd, runuser) and a session that "
                                "drops to nobody")

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "pmsub%d" % (os.getpid() % 100000)

CF = """\
[core]
user-id = nobody
spool-directory = {d}/spool
hostname = mail.test
logger = log
{core}
[logfile "log"]
file = {d}/log
[relay "down"]
address = [127.0.0.1]:1
[smtpd "submit"]
listen-port = unix:{socket}
{submit}
[smtpd "mx"]
listen-port = 127.0.0.1:{port}
[route]
far@ down
@mail.test {d}/md/
"""


@pytest.fixture(scope="module")
def user():
    subprocess.run(["useradd", "--no-create-home", "--no-user-group",
                    "--shell", "/usr/sbin/nologin", USER], check=True)
    try:
        yield pwd.getpwnam(USER)
    finally:
        subprocess.run(["userdel", USER], check=False)


class Site:
    """A configuration, a Maildir, a spool only nobody (the session user)
    may enter, and, when serve() is called, the submit socket."""

    def __init__(self, core="", submit="", port=2, sock=None):
        self.d = scratch_dir("pm-submit-", ("md",))
        for sub in ("tmp", "new", "cur"):
            os.mkdir(os.path.join(self.d, "md", sub))
            os.chmod(os.path.join(self.d, "md", sub), 0o1777)
        spool = os.path.join(self.d, "spool")
        os.mkdir(spool, 0o700)
        nobody = pwd.getpwnam("nobody")
        os.chown(spool, nobody.pw_uid, nobody.pw_gid)
        self.socket = sock or os.path.join(self.d, "submit")
        self.cf = os.path.join(self.d, "pm.cf")
        with open(self.cf, "w") as f:
            f.write(CF.format(d=self.d, core=core, submit=submit, port=port,
                              socket=self.socket))
        os.chmod(self.cf, 0o644)
        self.activate = None

    def serve(self, smtpd="submit"):
        """systemd-socket-activate --accept on the socket, mode 0666 as
        postmaster-submit.socket's SocketMode."""
        self.out = open(os.path.join(self.d, "activate.log"), "wb")
        self.activate = subprocess.Popen(
            [tool("systemd-socket-activate"), "--accept", "-l", self.socket,
             POSTMASTER, "--config=" + self.cf, "--smtpd=" + smtpd],
            stdout=self.out, stderr=self.out)
        wait_for(lambda: os.path.exists(self.socket), what="the socket")
        os.chmod(self.socket, 0o666)

    def close(self):
        if self.activate:
            self.activate.terminate()
            self.activate.wait(timeout=10)
            self.out.close()
        no_sanitizer_report(self.log(), "the sessions")
        remove_tree(self.d)

    def inject(self, who, *args, data=b"Subject: hello\n\nhi\n"):
        argv = [POSTMASTER, "--config=" + self.cf, "--inject", *args]
        if who != "root":
            argv = ["runuser", "-u", who, "--"] + argv
        r = subprocess.run(argv, input=data, capture_output=True, timeout=60)
        no_sanitizer_report(r.stderr.decode(errors="replace"), "--inject")
        return r

    def mail(self):
        new = os.path.join(self.d, "md", "new")
        out = []
        for f in sorted(os.listdir(new)):
            with open(os.path.join(new, f), "rb") as fh:
                out.append(fh.read())
        return out

    def log(self):
        path = os.path.join(self.d, "log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()


@pytest.fixture
def site(request):
    made = []

    def make(**kw):
        s = Site(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_user_mail_arrives_with_the_users_sender(site, user):
    s = site()
    s.serve()
    r = s.inject(USER, "ann@mail.test")
    assert r.returncode == 0, r.stderr
    msg, = s.mail()
    assert msg.startswith(b"Return-Path: <%s@mail.test>\n" % USER.encode())
    assert b"\nFrom: <%s@mail.test>\n" % USER.encode() in msg
    assert b"\nSubject: hello\n" in msg
    assert "uid=%d user=%s" % (user.pw_uid, USER) in s.log()


def test_untrusted_user_may_not_choose_the_sender(site, user):
    s = site(core="trusted-users = daemon")
    s.serve()
    r = s.inject(USER, "-f", "other@x.test", "ann@mail.test")
    assert r.returncode == 77, r.stderr  # EX_NOPERM, as 550 5.7.1 means
    err = r.stderr.decode()
    assert "550 5.7.1" in err and "trusted-users" in err, err
    assert "%s@mail.test" % USER in err
    assert s.mail() == []
    # its own address, and a trusted user's choice, are taken
    assert s.inject(USER, "-f", USER + "@mail.test",
                    "ann@mail.test").returncode == 0
    r = s.inject("daemon", "-f", "other@x.test", "ann@mail.test")
    assert r.returncode == 0, r.stderr
    froms = sorted(m.split(b"\n", 1)[0] for m in s.mail())
    assert froms == sorted([b"Return-Path: <%s@mail.test>" % USER.encode(),
                            b"Return-Path: <other@x.test>"])


def test_trusted_users_takes_a_user_number(site, user):
    """trusted-users = UID passed --check and never matched: the user's
    -f was refused with 550 5.7.1 (exit 77). A number is the user's uid."""
    s = site(core="trusted-users = %d" % user.pw_uid)
    r = subprocess.run([POSTMASTER, "--config=" + s.cf, "--check"],
                       capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr
    s.serve()
    r = s.inject(USER, "-f", "other@x.test", "ann@mail.test")
    assert r.returncode == 0, r.stderr
    r = s.inject("daemon", "-f", "other@x.test", "ann@mail.test")
    assert r.returncode == 77, r.stderr
    msg, = s.mail()
    assert msg.startswith(b"Return-Path: <other@x.test>\n")


def test_every_user_may_choose_the_sender_by_default(site, user):
    s = site()
    s.serve()
    r = s.inject(USER, "-f", "other@x.test", "ann@mail.test")
    assert r.returncode == 0, r.stderr
    msg, = s.mail()
    assert msg.startswith(b"Return-Path: <other@x.test>\n")


def test_relaying_user_whose_mail_is_spooled_cannot_read_the_spool(site,
                                                                   user):
    """relay-clients names no local client: the socket's user relays as
    an authenticated submitter; the same section over a pipe may not.
    The message waits in the spool for the unreachable relay, which the
    user can neither list nor read."""
    s = site(submit="relay-clients = 192.0.2.0/24")
    s.serve()
    r = s.inject(USER, "far@remote.test")
    assert r.returncode == 0, r.stderr
    spool = os.path.join(s.d, "spool")

    def owners():
        # the detached delivery may be renaming its envelope right now:
        # take a listing whose every file still stats
        files = [os.path.join(dp, f) for dp, _, fs in os.walk(spool)
                 for f in fs]
        try:
            return files and [(f, os.stat(f).st_uid) for f in files]
        except FileNotFoundError:
            return None
    listing = wait_for(owners, timeout=30, what="a steady spool listing")
    files = [f for f, _ in listing]
    assert all(uid == pwd.getpwnam("nobody").pw_uid for _, uid in listing)
    for argv in (["ls", spool], ["cat", *files]):
        r = subprocess.run(["runuser", "-u", USER, "--", *argv],
                           capture_output=True, timeout=30)
        assert r.returncode != 0 and b"Permission denied" in r.stderr, r
    p = subprocess.run([POSTMASTER, "--config=" + s.cf, "--smtpd=submit"],
                       input=b"EHLO x\r\nMAIL FROM:<root@mail.test>\r\n"
                             b"RCPT TO:<far@remote.test>\r\nQUIT\r\n",
                       capture_output=True, timeout=30)
    assert b"\r\n554 5.7.1 " in p.stdout, p.stdout


def test_a_user_is_told_the_spool_is_private(site, user):
    """mailq, sendmail -bp and --queue run by a user said only
    "Permission denied" and exited 75, try later, which never helps: the
    spool is private to root and user-id, as the message now says, with
    77 (EX_NOPERM)."""
    s = site()
    bindir = os.path.join(s.d, "bin")
    os.mkdir(bindir)
    os.chmod(s.d, 0o755)
    for name in ("mailq", "sendmail"):
        os.symlink(POSTMASTER, os.path.join(bindir, name))
    # -q and --flush stopped at the pid file (/run/postmaster.pid),
    # --delete at the log file, with 75
    for argv in ([os.path.join(bindir, "mailq"), "-C", s.cf],
                 [os.path.join(bindir, "sendmail"), "-C", s.cf, "-bp"],
                 [POSTMASTER, "--config=" + s.cf, "--queue"],
                 [os.path.join(bindir, "sendmail"), "-C", s.cf, "-q"],
                 [POSTMASTER, "--config=" + s.cf, "--flush"],
                 [POSTMASTER, "--config=" + s.cf,
                  "--flush=0123456789ABCDEF"],
                 [POSTMASTER, "--config=" + s.cf,
                  "--delete=0123456789ABCDEF"]):
        r = subprocess.run(["runuser", "-u", USER, "--", *argv],
                           capture_output=True, timeout=30)
        no_sanitizer_report(r.stderr.decode(errors="replace"), argv[0])
        assert r.returncode == 77, (argv, r)
        assert b"the spool is private: only root and core.user-id may " \
            b"list it" in r.stderr, (argv, r.stderr)
    r = subprocess.run([os.path.join(bindir, "mailq"), "-C", s.cf],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == b"Mail queue is empty\n", r


def test_root_is_told_what_is_wrong_with_the_spool(site):
    """Root was told that the spool is private (77) when it was not
    user-id's: root may list any spool; the configuration is wrong, and
    that is what it now hears."""
    s = site()
    spool = os.path.join(s.d, "spool")
    os.chown(spool, 0, 0)
    for argv in ([POSTMASTER, "--config=" + s.cf, "--queue"],
                 [POSTMASTER, "--config=" + s.cf,
                  "--flush=0123456789ABCDEF"]):
        r = subprocess.run(argv, capture_output=True, timeout=30)
        no_sanitizer_report(r.stderr.decode(errors="replace"), argv[0])
        assert r.returncode == 75, (argv, r)
        assert b"Permission denied (the spool and what is in it must " \
            b"belong to core.user-id)" in r.stderr, (argv, r.stderr)
        assert b"private" not in r.stderr, r.stderr


def test_user_id_is_told_a_queue_run_is_roots(site):
    """core.user-id running --flush cannot take root's pid file: it heard
    that the spool must belong to core.user-id, which it did."""
    s = site()
    pid = os.path.join(s.d, "flush.pid")
    open(pid, "w").close()
    with open(s.cf) as f:
        text = f.read()
    with open(s.cf, "w") as f:
        f.write(text.replace("[core]\n", "[core]\npid-file = %s\n" % pid, 1))
    os.chmod(s.d, 0o755)
    argv = ["runuser", "-u", "nobody", "--", POSTMASTER, "--config=" + s.cf,
            "--flush"]
    r = subprocess.run(argv, capture_output=True, timeout=30)
    no_sanitizer_report(r.stderr.decode(errors="replace"), "nobody")
    assert r.returncode == 75, r
    assert b"a queue run is root's" in r.stderr, r.stderr
    assert b"must belong to core.user-id" not in r.stderr, r.stderr


def test_a_users_check_does_not_speak_for_user_id(site, user):
    """A user's --check (and newaliases) probed the smarthost's
    auth-password-file as that user, not as user-id, and warned that
    user-id could not read a file made as postmaster.cf(5) says (0640,
    root, user-id's group) that user-id reads well."""
    nobody = pwd.getpwnam("nobody")
    s = site(core="group-id = %d" % nobody.pw_gid)
    os.chmod(s.d, 0o755)
    pw = os.path.join(s.d, "smart.pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chown(pw, 0, nobody.pw_gid)
    os.chmod(pw, 0o640)
    with open(s.cf, "a") as f:
        f.write('[relay "smart"]\naddress = [127.0.0.1]:1\nauth-user = acct'
                "\nauth-password-file = %s\n" % pw)
    for who in ("root", USER):
        argv = [POSTMASTER, "--config=" + s.cf, "--check"]
        if who != "root":
            argv = ["runuser", "-u", who, "--"] + argv
        r = subprocess.run(argv, capture_output=True, timeout=30)
        no_sanitizer_report(r.stderr.decode(errors="replace"), who)
        assert b": ok: " in r.stdout, (who, r)
        assert b"auth-password-file" not in r.stderr, (who, r.stderr)


def test_without_the_socket_a_user_gets_75(site, user):
    s = site()  # nobody serves the socket
    r = s.inject(USER, "ann@mail.test")
    assert r.returncode == 75, r.stderr
    err = r.stderr.decode()
    assert s.socket in err and "postmaster-submit.socket" in err, err
    assert s.mail() == [] and os.listdir(os.path.join(s.d, "spool")) == []


def test_root_injects_through_the_socket_when_it_is_there(site, user):
    s = site()
    s.serve()
    r = s.inject("root", "ann@mail.test")
    assert r.returncode == 0, r.stderr
    assert "uid=0 user=root" in s.log()
    assert s.mail()[0].startswith(b"Return-Path: <root@mail.test>\n")


def greeting_on(sock_path):
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(30)
        c.connect(sock_path)
        return c.recv(512)


def test_listeners_by_kind(site, user):
    """A network connection to the unix section, and a unix connection to
    the network section, are refused with 421 4.3.5."""
    s = site()
    srv = Tcpserver([POSTMASTER, "--config=" + s.cf, "--smtpd=submit"],
                    os.path.join(s.d, "tcpserver.log"))
    try:
        with socket.create_connection(("127.0.0.1", srv.port),
                                      timeout=30) as c:
            assert c.recv(512).startswith(b"421 4.3.5 ")
    finally:
        srv.stop()
    s.serve(smtpd="mx")
    assert greeting_on(s.socket).startswith(b"421 4.3.5 ")
    assert "unix:" + s.socket in s.log()


def test_abstract_socket_is_served_by_no_section(site, user):
    """An abstract unix socket is no path a listen-port can name: not even
    the unix section serves it."""
    s = site()
    name = "@pm-submit-%d" % os.getpid()
    p = subprocess.Popen([tool("systemd-socket-activate"), "--accept", "-l",
                          name, POSTMASTER, "--config=" + s.cf,
                          "--smtpd=submit"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def greeting():
            try:
                return greeting_on("\0" + name[1:])
            except ConnectionRefusedError:
                return None
        g = wait_for(greeting, what="the abstract socket")
        assert g.startswith(b"421 4.3.5 "), g
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert "unix:" + name in s.log()


BS_DIALOGUE = (b"EHLO client\r\nMAIL FROM:<%s@mail.test>\r\n"
               b"RCPT TO:<ann@mail.test>\r\nRCPT TO:<far@remote.test>\r\n"
               b"DATA\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n")


def test_bs_as_a_user_is_relayed_to_the_submit_socket(site, user):
    """A user's sendmail -bs cannot write the spool: its dialogue is the
    submit socket's session, which knows the user and lets it relay."""
    s = site()
    s.serve()
    r = s.inject(USER, "-bs", data=BS_DIALOGUE % USER.encode())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(b"220 "), out
    assert out.count(b"\r\n250 2.1.5 ") == 2, out
    assert b"\r\n250 2.0.0 Ok: queued as " in out, out
    assert out.endswith(b" closing connection\r\n"), out
    # the transaction was spooled (one recipient relays): the detached
    # delivery writes the local copy after the 250
    msg, = wait_for(s.mail, timeout=30, what="the local copy")
    assert msg.startswith(b"Return-Path: <%s@mail.test>\n" % USER.encode())
    assert msg.endswith(b"\nvia -bs\n")
    assert "uid=%d user=%s" % (user.pw_uid, USER) in s.log()
    # the relayed recipient waits in the spool for the relay that is down
    assert os.listdir(os.path.join(s.d, "spool"))


def test_bs_as_a_user_gets_the_fix_ups_on_the_shipped_submit_section(
        site, user):
    """With etc/postmaster.cf's [smtpd "submit"], a user's sendmail -bs
    once stored the message as it came: its Bcc reached every recipient,
    and it had no Date, Message-ID or From. It gets what sendmail's
    message mode gives (RFC 6409 8)."""
    s = site()
    with open(os.path.join(TOP, "etc", "postmaster.cf")) as f:
        text = f.read()
    for old, new in (("user-id = _postmaster", "user-id = nobody"),
                     ("/var/spool/postmaster", os.path.join(s.d, "spool")),
                     ("logger = syslog", "logger = stderr"),
                     ("unix:/run/postmaster/submit", "unix:" + s.socket),
                     ("\n[route]\n", "\n[route]\nann@localhost %s/md/\n"
                      % s.d)):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    with open(s.cf, "w") as f:
        f.write(text)
    s.serve()
    r = s.inject(USER, "-bs", data=b"EHLO client\r\nMAIL FROM:<%s@localhost>"
                 b"\r\nRCPT TO:<ann@localhost>\r\nDATA\r\nSubject: bs\r\n"
                 b"Bcc: secret@localhost\r\n\r\nbody\r\n.\r\nQUIT\r\n"
                 % USER.encode())
    assert r.returncode == 0, r.stderr
    assert b"\r\n354 " in r.stdout and b"\r\n250 2.0.0 " in r.stdout, \
        r.stdout
    msg, = wait_for(s.mail, timeout=30, what="the message")
    head = msg.split(b"\n\n", 1)[0] + b"\n"
    assert b"Bcc" not in head and b"secret" not in head, msg
    assert b"\nSubject: bs\n" in head
    assert b"\nFrom: <%s@localhost>\n" % USER.encode() in head, msg
    assert re.search(rb"\nDate: [^\n]+\n", head), msg
    assert re.search(rb"\nMessage-ID: <[^\n]+>\n", head), msg


def test_bs_as_a_user_ends_when_the_client_does(site, user):
    """EOF before QUIT: the session still answers what it got."""
    s = site()
    s.serve()
    r = s.inject(USER, "-bs", data=b"EHLO client\r\nNOOP\r\n")
    assert r.returncode == 0, r.stderr
    assert b"\r\n250 2.0.0 " in r.stdout, r.stdout


def test_bs_as_a_user_without_the_socket_is_421_and_75(site, user):
    s = site()  # nobody serves the socket
    r = s.inject(USER, "-bs", data=BS_DIALOGUE % USER.encode())
    assert r.returncode == 75, r.stderr
    assert r.stdout.startswith(b"421 4.3.2 "), r.stdout
    assert b"postmaster-submit.socket" in r.stderr
    assert s.mail() == []


def test_swaks_speaks_through_a_users_bs(site, user):
    """A real SMTP client on a pipe (swaks --pipe, as Postfix's users
    drive sendmail -bs) run by the user."""
    s = site()
    s.serve()
    r = subprocess.run(["runuser", "-u", USER, "--", tool("swaks"),
                        "--pipe", "%s --config=%s --inject -bs"
                        % (POSTMASTER, s.cf),
                        "--from", USER + "@mail.test", "--to",
                        "ann@mail.test", "--header", "Subject: by swaks"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    msg, = s.mail()
    assert b"\nSubject: by swaks\n" in msg
    assert "uid=%d user=%s" % (user.pw_uid, USER) in s.log()
