#!/usr/bin/env python3
"""IMAP benchmark the way clients work: LOGIN over TCP on loopback.

mdimap (mdimap-listen -> mdimapd), Dovecot (its master process with
imap-login and imap) and Courier-IMAP (couriertcpd -> imaplogin -> imapd with
a private authdaemond) each serve the same user over TCP on 127.0.0.1, on
hard-link copies (cp -al) of one generated maildir: an INBOX of N messages
plus 200 folders.  A client written here connects with TCP_NODELAY, logs in
with LOGIN and plays the steps in STEPS, timing each one (median and p99
where a step repeats), sampling the server's session process (CPU time, RSS),
and measuring its own ceiling.  Then imaptest's stress mode runs against
each server.

    cargo build --release --bins                 # target/ or $CARGO_TARGET_DIR
    benches/setup_dovecot.sh                     # once: Dovecot unpacked in benches/.tools
    python3 benches/run.py --messages 10000
    python3 benches/run.py --messages 100000     # the issue's size; see BENCHMARKS.md

Must run as root: each server starts as root and changes to the mail user
(nobody) after LOGIN, and Courier's authdaemond runs in a private mount
namespace (unshare) with its own /etc/courier and socket directory, so the
system's Courier configuration is neither read nor changed.

Nothing here asserts a time.  The output is Markdown (printed, and saved
with every raw number as JSON in benches/results-tcp-<N>.json); what counts
is the ratio between servers within one run, since the machines are noisy.
"""

import argparse
import grp
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOVECOT_ROOT = os.path.join(HERE, ".tools", "dovecot")
DOVECOT_LIB = os.path.join(DOVECOT_ROOT, "usr", "lib", "dovecot")
IMAPTEST = os.path.join(ROOT, "tests", "imaptest", "imaptest")  # vendored, see its README
COURIER_AUTHDAEMOND = "/usr/lib/courier/courier-authlib/authdaemond"
CLK_TCK = os.sysconf("SC_CLK_TCK")
STEP_TIMEOUT = 3600.0

USER = "bench"
PASSWORD = "bench-Pw-7"
# One SHA-512-crypt hash (5000 rounds, fixed salt) for all three servers, so
# that LOGIN costs every server the same hashing.
SALT = "mdimapbench0001"
MAIL_UID, MAIL_GID = 65534, 65534  # nobody:nogroup

SIZES = b"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)"
SUBJECT_WORD = b"invoice"     # one of the generator's words: in ~3 % of subjects
TEXT_WORD = b"zanzibar"       # planted in ~1 % of bodies
ABSENT_WORD = b"quizzaciously"  # in no message: every body is read to the end
NEVER_OPENED = "Archive.2023"

LITERAL = re.compile(rb"~?\{(\d+)\}\r\n")  # for the line-by-line path

# (key, description, unit).  Units: "ms" (median over the repetitions, p99
# beside it when there are enough), "MB/s", "msgs/s", "cmds/s", "MB".
STEPS = [
    ("login", "connect + LOGIN + LOGOUT", "ms"),
    ("noop", "NOOP round trip (the floor under every command)", "ms"),
    ("list1", 'LIST "" "*" (first)', "ms"),
    ("sel1", "SELECT INBOX, first ever (no server index)", "ms"),
    ("fsz1", "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE), first", "ms"),
    ("sel2", "SELECT INBOX again (new session)", "ms"),
    ("fsz2", "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE) again", "ms"),
    ("env", "FETCH 1:* ENVELOPE", "ms"),
    ("bs", "FETCH 1:* BODYSTRUCTURE", "ms"),
    ("body", "2,000 x UID FETCH <uid> BODY.PEEK[] (random), per command", "ms"),
    ("body_rate", "2,000 x UID FETCH <uid> BODY.PEEK[], throughput", "MB/s"),
    ("s_subj", 'UID SEARCH SUBJECT "%s"' % SUBJECT_WORD.decode(), "ms"),
    ("s_text", 'UID SEARCH TEXT "%s"' % TEXT_WORD.decode(), "ms"),
    ("s_absent", 'UID SEARCH BODY "%s" (absent word)' % ABSENT_WORD.decode(), "ms"),
    ("store", "STORE 1:* +FLAGS.SILENT (\\Flagged)", "ms"),
    ("append", "APPEND of 5 KB into INBOX, per command (INBOX selected)", "ms"),
    ("append_rate", "100 x APPEND into INBOX, throughput", "msgs/s"),
    ("list2", 'LIST "" "*" again', "ms"),
    ("nsel", "SELECT %s, never opened" % NEVER_OPENED, "ms"),
    ("nfetch", "FETCH 1:* (ENVELOPE BODYSTRUCTURE) on %s, first" % NEVER_OPENED, "ms"),
    ("status1", "STATUS (MESSAGES UIDNEXT UNSEEN) per folder, first pass", "ms"),
    ("status1_all", "STATUS on each of the ~200 folders, first pass, total", "ms"),
    ("status2", "STATUS per folder, second pass", "ms"),
    ("status2_all", "STATUS on each of the ~200 folders, second pass, total", "ms"),
    ("conc", "20 sessions at once: LOGIN, SELECT, FETCH 1:* FLAGS, per session", "ms"),
    ("conc_all", "20 sessions at once, until the last is done", "ms"),
    ("rss", "RSS of a session, INBOX selected (after FETCH 1:* sizes)", "MB"),
    ("hwm", "peak RSS of the main session (VmHWM before LOGOUT)", "MB"),
    ("stress", "imaptest stress, %d clients, %d s: commands/s", "cmds/s"),
]


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, in seconds (nan when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def memory_kb(pid):
    """(VmRSS, VmHWM) in kB."""
    rss = hwm = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def socket_owner(client_port, server_port):
    """The pid of the process holding the server end of our connection.

    The same for all three servers: whatever process model a server has
    (mdimapd per connection, Dovecot's imap getting the socket from
    imap-login, Courier's imaplogin exec'ing imapd), the process that
    serves the session holds the accepted socket."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                inode = fields[9]
                break
        if inode:
            break
    if not inode or inode == "0":
        raise Failed("no server socket for client port %d" % client_port)
    target = "socket:[%s]" % inode
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == target:
                        holders.append(int(entry))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    if not holders:
        raise Failed("no process holds %s" % target)
    return max(holders)  # the newest: the session process, not a parent


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

class Conn:
    """One IMAP connection over TCP.

    Bulk responses are read with a scanner that looks only for literal
    markers and for the tagged line (both found by C code: re and bytes.find),
    so the client spends far less time per response than the servers do; its
    remaining cost is measured by `client_ceiling`."""

    def __init__(self, port, tls_context=None):
        """Connects to 127.0.0.1:port; over TLS (implicit, port 993 style) when
        `tls_context` is an ssl.SSLContext."""
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_port = self.sock.getsockname()[1]
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(self.sock)
        self.buf = bytearray()
        self.pos = 0
        self.tagn = 0
        self.received = 0
        self.greeting = self.line()
        if not self.greeting.startswith(b"* OK"):
            raise Failed("greeting: %r" % self.greeting[:200])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        """Read more; returns how far the buffer moved left (compaction keeps
        everything from one byte before self.pos)."""
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Failed("timed out")
        if not chunk:
            raise Failed("server closed the connection")
        shift = 0
        if self.pos > (16 << 20):
            shift = self.pos - 1
            del self.buf[:shift]
            self.pos -= shift
        self.buf += chunk
        self.received += len(chunk)
        return shift

    def line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                out = bytes(self.buf[self.pos:end])
                self.pos = end + 2
                return out
            self._fill()

    def _literal(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def response(self):
        """One whole response (its literals inline) as bytes."""
        parts = []
        while True:
            line = self.line()
            parts.append(line)
            m = LITERAL.search(line + b"\r\n")
            if not m or m.end() != len(line) + 2:
                return b"\r\n".join(parts) if len(parts) > 1 else line
            parts.append(self._literal(int(m.group(1))))

    def send(self, data):
        self.sock.sendall(data)

    def next_tag(self):
        self.tagn += 1
        return b"A%d" % self.tagn

    def command(self, cmd, collect=False, literal=None):
        """Send a command; wait for its tagged OK.

        Returns (untagged responses, bytes received, collected responses).
        collect=False counts responses without splitting them (fast path)."""
        tag = self.next_tag()
        start_bytes = self.received - (len(self.buf) - self.pos)
        if literal is None:
            self.send(tag + b" " + cmd + b"\r\n")
        else:
            # A synchronizing literal: wait for the continuation, as a client
            # must when it does not rely on LITERAL+.
            self.send(tag + b" " + cmd + b" {%d}\r\n" % len(literal))
            while True:
                r = self.response()
                if r.startswith(b"+"):
                    break
                if r.startswith(tag + b" "):
                    raise Failed("%s: %r" % (cmd[:60], r[:200]))
            self.send(literal + b"\r\n")
        if collect:
            lines = []
            while True:
                r = self.response()
                if r.startswith(tag + b" "):
                    self._check(cmd, tag, r)
                    used = self.received - (len(self.buf) - self.pos) - start_bytes
                    return len(lines), used, lines
                lines.append(r)
        count = self._scan(cmd, tag)
        used = self.received - (len(self.buf) - self.pos) - start_bytes
        return count, used, None

    def _check(self, cmd, tag, line):
        status = line[len(tag) + 1:].split(b" ", 1)[0]
        if status != b"OK":
            raise Failed("%s: %r" % (cmd[:60].decode(errors="replace"), line[:300]))

    def _scan(self, cmd, tag):
        tagged = tag + b" "
        marker = b"\r\n" + tagged
        count = 0
        pos = self.pos
        while True:
            buf = self.buf
            lit = next_literal(buf, pos)
            limit = lit[0] if lit else len(buf)
            if buf.startswith(tagged, pos):
                at = pos
            else:
                at = buf.find(marker, pos, limit)
                if at >= 0:
                    at += 2
            if lit and at < 0:
                count += buf.count(b"\n* ", max(pos - 1, 0), lit[0])
                end = lit[1] + lit[2]
                self.pos = lit[1]
                while len(self.buf) < end:
                    end -= self._fill()
                pos = end
                continue
            if at >= 0:
                eol = buf.find(b"\r\n", at)
                if eol >= 0:
                    count += buf.count(b"\n* ", max(pos - 1, 0), at)
                    self._check(cmd, tag, bytes(buf[at:eol]))
                    self.pos = eol + 2
                    return count
            elif len(buf) > pos:
                # Every complete line up to the last CRLF holds neither a
                # literal marker nor the tagged line: skip them for good.
                last = buf.rfind(b"\r\n", pos)
                if last >= 0:
                    count += buf.count(b"\n* ", max(pos - 1, 0), last + 2)
                    pos = last + 2
            self.pos = pos
            self._fill()
            pos = self.pos

    def login(self):
        self.command(b"LOGIN " + USER.encode() + b" \"" + PASSWORD.encode() + b"\"")

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except Failed:
            pass
        self.close()

    def session_pid(self):
        return socket_owner(self.client_port, self.port)


def next_literal(buf, pos):
    """(start of the marker, start of the data, length) of the first literal
    announced at or after pos, or None.  Found with bytes.find, not re: the
    marker "{n}" ends a line, and nothing else a server sends ends in "}"."""
    while True:
        close = buf.find(b"}\r\n", pos)
        if close < 0:
            return None
        open_ = buf.rfind(b"{", max(pos, close - 12), close)
        if open_ >= 0 and close > open_ + 1 and buf[open_ + 1:close].isdigit():
            start = open_ - 1 if open_ > 0 and buf[open_ - 1] == 0x7E else open_  # ~{n}
            return start, close + 3, int(buf[open_ + 1:close])
        pos = close + 1


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def summary(samples_s):
    ms = [v * 1000 for v in samples_s]
    return {"median": statistics.median(ms), "p99": pct(ms, 99), "n": len(ms),
            "total": sum(ms)}


# ---------------------------------------------------------------------------
# The client's own ceiling
# ---------------------------------------------------------------------------

def client_ceiling(n_lines=200_000, n_literals=4000, literal_size=10_000):
    """How fast this client reads, against a trivial loopback sender.

    A forked child writes a prepared FETCH response (short lines, then
    literals) as fast as it can; the parent reads it with the same code as
    for the servers.  Returns responses/s, MB/s and the client's CPU share."""
    lines = b"".join(
        b'* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d INTERNALDATE '
        b'"01-Jan-2024 12:00:00 +0000")\r\n' % (i, i, 4000 + i) for i in range(1, n_lines + 1))
    body = (b"x" * 70 + b"\r\n") * (literal_size // 72)
    lits = b"".join(b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (i, i, len(body), body)
                    for i in range(1, n_literals + 1))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            c, _ = listener.accept()
            c.sendall(b"* OK ceiling\r\n")
            f = c.makefile("rb")
            for payload in (lines, lits):
                line = f.readline()
                tag = line.split(b" ", 1)[0]
                c.sendall(payload + tag + b" OK done\r\n")
            f.readline()
        finally:
            os._exit(0)
    listener.close()
    out = {}
    try:
        conn = Conn(port)
        for key, payload, n in (("lines", lines, n_lines), ("literals", lits, n_literals)):
            c0 = time.process_time()
            t0 = time.perf_counter()
            count, nbytes, _ = conn.command(b"FETCH 1:* X")
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if count != n:
                raise Failed("ceiling: counted %d of %d responses" % (count, n))
            out[key] = {"responses_per_s": n / wall, "mb_per_s": nbytes / wall / 1e6,
                        "cpu_share": cpu / wall, "wall": wall, "bytes": nbytes}
        conn.send(b"A9 LOGOUT\r\n")
        conn.close()
    finally:
        os.waitpid(pid, 0)
    return out


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------

def prepare_store(workdir, messages, seed, folders):
    base = os.path.join(workdir, "src-%d-seed%d-f%d" % (messages, seed, folders))
    source = os.path.join(base, "Maildir")
    stamp = os.path.join(base, "ready")
    if not os.path.exists(stamp):
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        t0 = time.time()
        subprocess.run([sys.executable, os.path.join(HERE, "gen_maildir.py"), source,
                        "--messages", str(messages), "--seed", str(seed),
                        "--folders", str(folders)], check=True)
        # Every copy is a hard-link copy: the files are shared, so they are
        # owned by the mail user once, here.
        subprocess.run(["chown", "-R", "%d:%d" % (MAIL_UID, MAIL_GID), source], check=True)
        with open(stamp, "w") as f:
            f.write("generated in %.0f s\n" % (time.time() - t0))
    return source


def warm_cache(source):
    """Read every file, so that no server pays for a disk the others do not."""
    subprocess.run("find %s -type f -print0 | xargs -0 cat > /dev/null" % source,
                   shell=True, check=True)


def fresh_copy(source, run_dir):
    shutil.rmtree(run_dir, ignore_errors=True)
    home = os.path.join(run_dir, "home")
    os.makedirs(home)
    maildir = os.path.join(home, "Maildir")
    subprocess.run(["cp", "-al", source, maildir], check=True)
    os.chown(home, MAIL_UID, MAIL_GID)
    os.chmod(run_dir, 0o755)
    return home, maildir


def password_hash():
    return subprocess.run(["openssl", "passwd", "-6", "-salt", SALT, PASSWORD],
                          capture_output=True, text=True, check=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# Servers: each start_* returns a Server; stop() ends its process group.
# ---------------------------------------------------------------------------

class Server:
    def __init__(self, name, argv, port, log_path, env=None, cwd=None):
        self.name = name
        self.port = port
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=env, cwd=cwd,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise Failed("%s exited (%s) at start; see %s" % (name, self.proc.returncode,
                                                                  log_path))
            try:
                c = Conn(port)
                c.logout()
                break
            except (OSError, Failed):
                if time.monotonic() > deadline:
                    self.stop()
                    raise Failed("%s does not answer on port %d; see %s" % (name, port,
                                                                            log_path))
                time.sleep(0.1)

    def stop(self):
        pgid = self.proc.pid  # start_new_session: its own process group
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # children (authdaemond, Dovecot's services) may outlive the leader
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                continue
            break
        self.log.close()


def bin_dir(args):
    if args.bin_dir:
        return args.bin_dir
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release")


def start_mdimap(args, run_dir, home, maildir, pwhash, extra_conf="", extra_argv=()):
    """mdimap-listen on a free port of 127.0.0.1 with the benchmark's account;
    `extra_conf` (lines with their own comment) and `extra_argv` are added."""
    port = free_port()
    users = os.path.join(run_dir, "users")
    with open(users, "w") as f:
        f.write("%s:%s:%d:%d:%s:%s\n" % (USER, pwhash, MAIL_UID, MAIL_GID, home, maildir))
    os.chmod(users, 0o600)
    conf = os.path.join(run_dir, "mdimapd.conf")
    with open(conf, "w") as f:
        f.write("# written by benches/run.py: defaults, except the user file and\n"
                "# the session limits (20 sessions and imaptest from one address)\n"
                "MDIMAP_USERFILE=%s\nMAXDAEMONS=100\nMAXPERIP=100\n" % users)
        f.write(extra_conf)
    listen = os.path.join(bin_dir(args), "mdimap-listen")
    argv = [listen, "--config", conf, "--listen", "127.0.0.1:%d" % port, "--log-stderr"]
    argv.extend(extra_argv)
    return Server("mdimap", argv, port, os.path.join(run_dir, "server.log"))


def dovecot_services(conf_path, env):
    """`service X { executable = <unpacked>/X }` for every service whose binary
    is in the unpacked tree: the master would otherwise run /usr/lib/dovecot/X."""
    out = subprocess.run([os.path.join(DOVECOT_ROOT, "usr", "bin", "doveconf"), "-c",
                          conf_path, "-a"], capture_output=True, text=True, env=env,
                         check=True).stdout
    blocks, service = [], None
    for line in out.splitlines():
        m = re.match(r"^service ([A-Za-z0-9_-]+) \{", line)
        if m:
            service = m.group(1)
            continue
        m = re.match(r"^  executable = (.+)$", line)
        if m and service:
            exe = m.group(1).split()
            if not os.path.isabs(exe[0]) and os.path.exists(os.path.join(DOVECOT_LIB, exe[0])):
                blocks.append("service %s {\n  executable = %s\n}\n" % (
                    service, " ".join([os.path.join(DOVECOT_LIB, exe[0])] + exe[1:])))
            service = None
    return "".join(blocks)


def start_dovecot_for(run_dir, accounts, pwhash, written_by, why, extra):
    """Dovecot's master on a free port of 127.0.0.1, from the unpacked tree, with
    Dovecot's defaults except where it runs, how it finds `accounts` ((name,
    home) pairs, all of the mail uid, sharing `pwhash`), the unpacked binaries
    and `extra` configuration; `why` says what `extra` is for, in the file."""
    port = free_port()
    for d in ("run", "state"):
        os.makedirs(os.path.join(run_dir, d), exist_ok=True)
    passwd = os.path.join(run_dir, "passwd")
    with open(passwd, "w") as f:
        for name, home in accounts:
            f.write("%s:{SHA512-CRYPT}%s:%d:%d::%s::\n" % (name, pwhash, MAIL_UID, MAIL_GID, home))
    # Dovecot's auth process runs as its own user (default_internal_user).
    os.chown(passwd, 0, grp.getgrnam("dovecot").gr_gid)
    os.chmod(passwd, 0o640)
    conf = os.path.join(run_dir, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(
            "# written by {w}: Dovecot's defaults, except where it runs,\n"
            "# how it finds the users and the unpacked binaries, and {why}\n"
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/server.log\n"
            "protocols = imap\nlisten = 127.0.0.1\nssl = no\n"
            "mail_location = maildir:~/Maildir\n"
            "import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS "
            "LD_LIBRARY_PATH\n"
            "passdb {{\n  driver = passwd-file\n  args = {p}\n}}\n"
            "userdb {{\n  driver = passwd-file\n  args = {p}\n}}\n"
            "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n"
            "    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n"
            .format(w=written_by, why=why, d=run_dir, p=passwd, port=port))
        f.write(extra)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LD_LIBRARY_PATH": DOVECOT_LIB}
    services = dovecot_services(conf, env)
    with open(conf, "a") as f:
        f.write(services)
    argv = [os.path.join(DOVECOT_ROOT, "usr", "sbin", "dovecot"), "-F", "-c", conf]
    return Server("dovecot", argv, port, os.path.join(run_dir, "master.log"), env=env)


def start_dovecot(args, run_dir, home, maildir, pwhash):
    return start_dovecot_for(
        run_dir, [(USER, home)], pwhash, "benches/run.py",
        "the connection\n# limit per user and address (default 10: 20 sessions at once need more)",
        "protocol imap {\n  mail_max_userip_connections = 100\n}\n")


# Runs inside `unshare --mount`: authdaemond and imaplogin have their paths
# compiled in (/etc/courier, /run/courier/authdaemon), so private directories
# are bound over them, as tests/auth_backends.rs does.  couriertcpd is started
# the way Debian's /usr/sbin/imapd starts it (Debian's /etc/courier/imapd
# sourced with set -a, ulimit -v IMAP_ULIMITD), except the address, the port
# and the connection limits.
COURIER_SCRIPT = r"""set -e
mount --bind "$T/etc" /etc/courier
mount --bind "$T/authrun" /run/courier/authdaemon
userdb "$BENCH_USER" set home="$T/home" uid="$BENCH_UID" gid="$BENCH_GID" mail="$T/home/Maildir"
printf '%s\n' "$BENCH_HASH" | userdb "$BENCH_USER" set systempw
makeuserdb
/usr/lib/courier/courier-authlib/authdaemond &
n=0
while [ ! -S /run/courier/authdaemon/socket ]; do
    n=$((n+1)); [ $n -lt 200 ] || { echo "authdaemond: no socket" >&2; exit 1; }
    sleep 0.05
done
exec env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin BENCH_PORT="$BENCH_PORT" /bin/sh -c '
set -a; . /etc/courier/imapd; set +a
ulimit -v $IMAP_ULIMITD
exec /usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=100 -maxperip=100 $TCPDOPTS \
    "$BENCH_PORT" /usr/lib/courier/courier/imaplogin /usr/bin/imapd Maildir'
"""


def start_courier(args, run_dir, home, maildir, pwhash):
    port = free_port()
    etc = os.path.join(run_dir, "etc")
    os.makedirs(etc)
    os.makedirs(os.path.join(run_dir, "authrun"))
    shutil.copy("/etc/courier/imapd", os.path.join(etc, "imapd"))
    with open(os.path.join(etc, "authdaemonrc"), "w") as f:
        f.write('authmodulelist="authuserdb"\nauthmodulelistorig="authuserdb"\n'
                "daemons=5\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\n"
                'DEFAULTOPTIONS=""\nLOGGEROPTS=""\n')
    open(os.path.join(etc, "userdb"), "w").close()
    os.chmod(os.path.join(etc, "userdb"), 0o600)
    os.chmod(etc, 0o700)
    os.makedirs("/run/courier/authdaemon", exist_ok=True)  # the mount point
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "T": run_dir, "BENCH_USER": USER,
           "BENCH_UID": str(MAIL_UID), "BENCH_GID": str(MAIL_GID), "BENCH_HASH": pwhash,
           "BENCH_PORT": str(port)}
    argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
            COURIER_SCRIPT]
    return Server("courier", argv, port, os.path.join(run_dir, "server.log"), env=env)


SERVERS = {"mdimap": start_mdimap, "dovecot": start_dovecot, "courier": start_courier}
LABELS = {"mdimap": "mdimap", "dovecot": "Dovecot", "courier": "Courier"}


def versions(args):
    out = {}
    try:
        out["mdimap"] = subprocess.run([os.path.join(bin_dir(args), "mdimapd"), "--version"],
                                       capture_output=True, text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        out["mdimap"] += " (commit %s%s)" % (commit, ", src modified" if dirty else "")
    except OSError as e:
        out["mdimap"] = "unknown (%s)" % e
    out["courier"] = "courier-imap " + subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "courier-imap"], capture_output=True,
        text=True).stdout.strip()
    try:
        out["dovecot"] = "dovecot " + subprocess.run(
            [os.path.join(DOVECOT_ROOT, "usr", "sbin", "dovecot"), "--version"],
            capture_output=True, text=True, env={"LD_LIBRARY_PATH": DOVECOT_LIB}).stdout.strip()
    except OSError as e:
        out["dovecot"] = "unknown (%s)" % e
    return out


# ---------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------

def exists_of(lines):
    n = None
    for line in lines:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            n = int(m.group(1))
    return n


def search_hits(lines):
    return sum(len(l.split()) - 2 for l in lines if l.startswith(b"* SEARCH"))


def parse_list(lines):
    """[(flags, name)] from LIST responses."""
    out = []
    for line in lines:
        m = re.match(rb'\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        if not m:
            continue
        name = m.group(2)
        if name.startswith(b'"') and name.endswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out.append((m.group(1).lower(), name))
    return out


def quote(name):
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def append_message():
    """A fixed 5 KB text message with CRLF line ends, as a client sends it."""
    rng = random.Random(7)
    words = "append benchmark message body text line with some words".split()
    head = ("From: Bench Client <client@example.com>\r\n"
            "To: bench.user@example.com\r\n"
            "Subject: appended by the benchmark\r\n"
            "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
            "Message-ID: <append.bench@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    body, size = [], len(head)
    while size < 5120:
        line = " ".join(rng.choice(words) for _ in range(10)) + "\r\n"
        body.append(line)
        size += len(line)
    return (head + "".join(body)).encode()


class Recorder:
    """Wall time, the client's CPU and the server session's CPU of each step."""

    def __init__(self):
        self.steps = {}

    def timed(self, key, conn_or_pid, fn):
        pid = conn_or_pid if isinstance(conn_or_pid, int) else conn_or_pid.session_pid()
        s0 = cpu_seconds(pid)
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        self.steps[key] = {"wall": wall, "client_cpu": time.process_time() - c0,
                           "server_cpu": cpu_seconds(pid) - s0, "value": wall * 1000}
        return out

    def set(self, key, **kw):
        self.steps.setdefault(key, {}).update(kw)


def run_server(name, args, source, pwhash):
    run_dir = os.path.join(args.workdir, "run-" + name)
    print("%s: copying the store (cp -al) ..." % name, file=sys.stderr)
    home, maildir = fresh_copy(source, run_dir)
    warm_cache(source)
    server = SERVERS[name](args, run_dir, home, maildir, pwhash)
    rec = Recorder()
    notes = []
    rng = random.Random(args.seed)
    try:
        play(name, server.port, args, rec, rng, notes)
        if args.stress_secs > 0:
            stress(name, server.port, args, rec, notes, source)
    except Failed as e:
        notes.append("failed: %s" % e)
        print("  %s failed: %s" % (name, e), file=sys.stderr)
    finally:
        server.stop()
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"steps": rec.steps, "notes": notes}


def play(name, port, args, rec, rng, notes):
    say = lambda what: print("  %s: %s" % (name, what), file=sys.stderr)

    # connect + LOGIN + LOGOUT, repeated
    say("%d x connect + LOGIN + LOGOUT" % args.logins)
    samples = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(args.logins):
        t0 = time.perf_counter()
        c = Conn(port)
        c.login()
        c.command(b"LOGOUT")
        samples.append(time.perf_counter() - t0)
        c.close()
    rec.set("login", **summary(samples), value=statistics.median(samples) * 1000,
            wall=time.perf_counter() - w0, client_cpu=time.process_time() - c0)

    # Session 1: what a client's very first visit does.
    say("first session: LIST, SELECT INBOX, FETCH sizes")
    c = Conn(port)
    c.login()
    _, _, lines = rec.timed("list1", c, lambda: c.command(b'LIST "" "*"', collect=True))
    folders = parse_list(lines)
    rec.set("list1", info="%d names" % len(folders))
    _, _, lines = rec.timed("sel1", c, lambda: c.command(b"SELECT INBOX", collect=True))
    exists = exists_of(lines)
    rec.set("sel1", info="%s EXISTS" % exists)
    n, nbytes, _ = rec.timed("fsz1", c, lambda: c.command(SIZES))
    rec.set("fsz1", info="%d responses, %.2f MB" % (n, nbytes / 1e6))
    c.logout()

    # Sessions 2..: SELECT and FETCH sizes again, and the RSS of a session
    # that has INBOX selected (what an idle client leaves behind).
    say("%d sessions: SELECT INBOX, FETCH sizes again" % args.reps)
    sel, fsz, rss, fsz_cpu, sel_cpu = [], [], [], [], []
    for _ in range(args.reps):
        c = Conn(port)
        c.login()
        pid = c.session_pid()
        s0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        c.command(b"SELECT INBOX")
        t1 = time.perf_counter()
        s1 = cpu_seconds(pid)
        c.command(SIZES)
        t2 = time.perf_counter()
        sel.append(t1 - t0)
        fsz.append(t2 - t1)
        sel_cpu.append(s1 - s0)
        fsz_cpu.append(cpu_seconds(pid) - s1)
        rss.append(memory_kb(pid)[0] / 1024)
        process = comm(pid)
        c.logout()
    rec.set("sel2", **summary(sel), value=statistics.median(sel) * 1000,
            server_cpu=statistics.median(sel_cpu))
    rec.set("fsz2", **summary(fsz), value=statistics.median(fsz) * 1000,
            server_cpu=statistics.median(fsz_cpu))
    rec.set("rss", value=statistics.median(rss), info="process %s" % process)

    # The main session.
    c = Conn(port)
    c.login()
    pid = c.session_pid()
    _, _, lines = c.command(b"SELECT INBOX", collect=True)
    exists = exists_of(lines)
    _, _, lines = c.command(b"UID SEARCH ALL", collect=True)
    uids = [int(x) for l in lines if l.startswith(b"* SEARCH") for x in l.split()[2:]]

    say("NOOP")
    samples = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(args.noops):
        t0 = time.perf_counter()
        c.command(b"NOOP")
        samples.append(time.perf_counter() - t0)
    rec.set("noop", **summary(samples), value=statistics.median(samples) * 1000,
            wall=time.perf_counter() - w0, client_cpu=time.process_time() - c0)

    say("FETCH ENVELOPE, BODYSTRUCTURE")
    n, nbytes, _ = rec.timed("env", pid, lambda: c.command(b"FETCH 1:* ENVELOPE"))
    rec.set("env", info="%d responses, %.2f MB" % (n, nbytes / 1e6))
    n, nbytes, _ = rec.timed("bs", pid, lambda: c.command(b"FETCH 1:* BODYSTRUCTURE"))
    rec.set("bs", info="%d responses, %.2f MB" % (n, nbytes / 1e6))

    say("%d x BODY.PEEK[]" % args.bodies)
    picks = [uids[rng.randrange(len(uids))] for _ in range(args.bodies)] if uids else []
    samples, total = [], 0

    def bodies():
        nonlocal total
        for uid in picks:
            t0 = time.perf_counter()
            _, nb, _ = c.command(b"UID FETCH %d BODY.PEEK[]" % uid)
            samples.append(time.perf_counter() - t0)
            total += nb
    rec.timed("body", pid, bodies)
    wall = rec.steps["body"]["wall"]
    rec.set("body", **summary(samples), value=statistics.median(samples) * 1000,
            info="%.1f MB in %d commands" % (total / 1e6, len(picks)))
    rec.set("body_rate", value=total / 1e6 / wall, info="%.1f MB" % (total / 1e6))

    say("SEARCH")
    for key, cmd in (("s_subj", b"UID SEARCH SUBJECT " + SUBJECT_WORD),
                     ("s_text", b"UID SEARCH TEXT " + TEXT_WORD),
                     ("s_absent", b"UID SEARCH BODY " + ABSENT_WORD)):
        _, _, lines = rec.timed(key, pid, lambda: c.command(cmd, collect=True))
        rec.set(key, info="%d hits" % search_hits(lines))

    say("STORE 1:*")
    n, _, _ = rec.timed("store", pid, lambda: c.command(b"STORE 1:* +FLAGS.SILENT (\\Flagged)"))
    rec.set("store", info="%d responses" % n)

    say("%d x APPEND" % args.appends)
    msg = append_message()
    samples = []

    def appends():
        for _ in range(args.appends):
            t0 = time.perf_counter()
            c.command(b"APPEND INBOX (\\Seen)", literal=msg)
            samples.append(time.perf_counter() - t0)
    rec.timed("append", pid, appends)
    wall = rec.steps["append"]["wall"]
    rec.set("append", **summary(samples), value=statistics.median(samples) * 1000,
            info="%d bytes each" % len(msg))
    rec.set("append_rate", value=args.appends / wall)

    _, _, lines = rec.timed("list2", pid, lambda: c.command(b'LIST "" "*"', collect=True))
    folders = parse_list(lines)
    rec.set("list2", info="%d names" % len(folders))

    say("never-opened folder")
    never = [f for f in folders if f[1].endswith(b"." + NEVER_OPENED.encode())
             or f[1] == NEVER_OPENED.encode()]
    if never:
        box = never[0][1]
        _, _, lines = rec.timed("nsel", pid, lambda: c.command(b"SELECT " + quote(box),
                                                               collect=True))
        rec.set("nsel", info="%s EXISTS" % exists_of(lines))
        n, nbytes, _ = rec.timed("nfetch", pid, lambda: c.command(
            b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)"))
        rec.set("nfetch", info="%d responses, %.2f MB" % (n, nbytes / 1e6))
    else:
        notes.append("no folder named %s in LIST" % NEVER_OPENED)

    say("STATUS")
    selectable = [f[1] for f in folders
                  if b"\\noselect" not in f[0] and b"\\nonexistent" not in f[0]
                  and f[1].upper() != b"INBOX"]
    for key in ("status1", "status2"):
        samples, messages = [], 0

        def statuses():
            nonlocal messages
            for box in selectable:
                t0 = time.perf_counter()
                _, _, lines = c.command(b"STATUS " + quote(box) + b" (MESSAGES UIDNEXT UNSEEN)",
                                        collect=True)
                samples.append(time.perf_counter() - t0)
                for l in lines:
                    m = re.search(rb"MESSAGES (\d+)", l)
                    if m:
                        messages += int(m.group(1))
        rec.timed(key + "_all", pid, statuses)
        rec.set(key, **summary(samples), value=statistics.median(samples) * 1000)
        rec.set(key + "_all", info="%d folders, %d messages" % (len(selectable), messages))

    rec.set("hwm", value=memory_kb(pid)[1] / 1024, info="process %s" % comm(pid))
    c.logout()

    say("%d sessions at once" % args.concurrent)
    concurrent(port, args, rec)


def concurrent(port, args, rec):
    n = args.concurrent
    barrier = threading.Barrier(n + 1)
    times, cpus, errors = [None] * n, [0.0] * n, []
    counts = [0] * n

    def one(i):
        try:
            barrier.wait()
            t0 = time.perf_counter()
            c = Conn(port)
            c.login()
            c.command(b"SELECT INBOX")
            counts[i], _, _ = c.command(b"FETCH 1:* FLAGS")
            times[i] = time.perf_counter() - t0
            try:
                cpus[i] = cpu_seconds(c.session_pid())
            except Failed:
                cpus[i] = float("nan")
            c.logout()
        except (Failed, OSError, threading.BrokenBarrierError) as e:
            errors.append(str(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    c0 = time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - c0
    done = [t for t in times if t is not None]
    if errors:
        rec.set("conc_all", info="%d failed: %s" % (len(errors), errors[0][:200]))
    if done:
        rec.set("conc", **summary(done), value=statistics.median(done) * 1000,
                info="%d sessions, %d responses each" % (len(done), statistics.median(counts)))
    rec.set("conc_all", wall=wall, value=wall * 1000, client_cpu=client_cpu,
            server_cpu=sum(x for x in cpus if x == x))


def make_mbox(source, path, count=500):
    """An mbox of `count` INBOX messages under 100 KB for imaptest to APPEND."""
    cur = os.path.join(source, "cur")
    names = sorted(os.listdir(cur))
    with open(path, "wb") as out:
        n = 0
        for name in names:
            p = os.path.join(cur, name)
            if os.path.getsize(p) > 100_000:
                continue
            with open(p, "rb") as f:
                data = f.read()
            out.write(b"From bench@example.com Mon Jan  1 12:00:00 2024\n")
            for line in data.split(b"\n"):
                if re.match(rb">*From ", line):
                    line = b">" + line
                out.write(line + b"\n")
            n += 1
            if n >= count:
                break


def stress(name, port, args, rec, notes, source):
    if not os.path.exists(IMAPTEST):
        notes.append("imaptest missing (%s): stress skipped" % IMAPTEST)
        return
    mbox = os.path.join(args.workdir, "stress.mbox")
    if not os.path.exists(mbox):
        make_mbox(source, mbox)
    c = Conn(port)
    c.login()
    _, _, lines = c.command(b"NAMESPACE", collect=True)
    prefix = b""
    m = re.search(rb'\* NAMESPACE \(\("([^"]*)"', lines[0]) if lines else None
    if m:
        prefix = m.group(1)
    box = prefix + b"stress"
    c.command(b"CREATE " + quote(box))
    c.logout()
    print("  imaptest stress, %d s ..." % args.stress_secs, file=sys.stderr)
    out = subprocess.run([IMAPTEST, "host=127.0.0.1", "port=%d" % port, "user=" + USER,
                          "pass=" + PASSWORD, "box=" + box.decode(), "mbox=" + mbox,
                          "clients=%d" % args.stress_clients, "secs=%d" % args.stress_secs],
                         capture_output=True, text=True, timeout=args.stress_secs + 300)
    text = out.stdout + out.stderr
    log = os.path.join(args.workdir, "imaptest-%s.log" % name)
    with open(log, "w") as f:
        f.write(text)
    kinds = {}
    for line in text.splitlines():
        if line.startswith("Error:"):
            kind = re.sub(r"\d+", "N", line)[:160]
            kinds[kind] = kinds.get(kind, 0) + 1
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3]:
        notes.append("imaptest: %d x `%s` (all in %s)" % (n, kind, log))
    rate, counts, errors = parse_imaptest(text, args.stress_secs)
    rec.set("stress", value=rate, counts=counts,
            info="%d commands, %d error lines" % (sum(counts.values()), errors),
            log_tail="\n".join(text.splitlines()[-60:]))


def parse_imaptest(text, secs):
    """imaptest ends with "Totals:", a line of command names, a line or two
    of percentages (the mix it aims at) and a line of counts over the whole
    run.  Returns (commands/s, {command: count}, error lines)."""
    lines = text.splitlines()
    errors = sum(1 for l in lines if "Error:" in l or "error:" in l.lower()[:20])
    try:
        at = max(i for i, l in enumerate(lines) if l.startswith("Totals:"))
    except ValueError:
        return float("nan"), {}, errors
    names = lines[at + 1].split()
    for line in lines[at + 2:]:
        fields = line.split()
        if len(fields) == len(names) and all(f.isdigit() for f in fields):
            counts = dict(zip(names, (int(f) for f in fields)))
            return sum(counts.values()) / secs, counts, errors
    return float("nan"), {}, errors


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt(v):
    if v is None or v != v:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3f" % v


def ratio(a, b):
    if a is None or b is None or a != a or b != b or b <= 0:
        return "-"
    return "%.2f" % (a / b)


def cell(st):
    if not st or st.get("value") is None:
        return "-"
    s = fmt(st["value"])
    if st.get("n", 0) >= 20:
        s += " (p99 %s)" % fmt(st["p99"])
    return s


def report(results, names, meta, ceiling):
    others = [n for n in names if n != "mdimap"]
    head = ["step", "unit"] + [LABELS[n] for n in names]
    if "mdimap" in names:
        head += ["mdimap/%s" % LABELS[o] for o in others]
    head.append("client CPU/wall")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, desc, unit in STEPS:
        if key == "stress":
            desc = desc % (meta["stress_clients"], meta["stress_secs"])
        sts = {n: results[n]["steps"].get(key) for n in names}
        if not any(sts.values()):
            continue
        row = [desc, unit + (" median" if any((s or {}).get("n", 0) > 1 for s in sts.values())
                             else "")]
        row += [cell(sts[n]) for n in names]
        if "mdimap" in names:
            for o in others:
                a = (sts["mdimap"] or {}).get("value")
                b = (sts[o] or {}).get("value")
                row.append(ratio(a, b))
        shares = [s["client_cpu"] / s["wall"] for s in sts.values()
                  if s and s.get("wall") and s.get("client_cpu") is not None]
        row.append("%.2f" % max(shares) if shares else "")
        out.append("| " + " | ".join(row) + " |")
    main = "\n".join(out)

    out = ["| step | " + " | ".join(LABELS[n] for n in names) + " |",
           "|" + "---|" * (len(names) + 1)]
    for key, desc, unit in STEPS:
        vals = {n: results[n]["steps"].get(key, {}).get("server_cpu") for n in names}
        if all(v is None for v in vals.values()):
            continue
        out.append("| %s | %s |" % (key, " | ".join(fmt(v) for v in vals.values())))
    cpu = "\n".join(out)

    out = ["| step | " + " | ".join(LABELS[n] for n in names) + " |",
           "|" + "---|" * (len(names) + 1)]
    for key, desc, unit in STEPS:
        infos = [results[n]["steps"].get(key, {}).get("info", "") for n in names]
        if any(infos):
            out.append("| %s | %s |" % (key, " | ".join(infos)))
    checks = "\n".join(out)

    lines = ceiling["lines"]
    lits = ceiling["literals"]
    text = [
        "## %d messages in INBOX, %d folders (%d MB store, seed %d)" % (
            meta["messages"], meta["folders"], meta["store_mb"], meta["seed"]), "",
        "Times in ms (median; p99 beside it where the step repeats 20 times or more);",
        "a ratio below 1 means mdimap is faster, except for the MB/s, msgs/s and",
        "cmds/s rows, where above 1 means mdimap is faster.", "",
        main, "",
        "Client ceiling: against a trivial loopback sender this client reads "
        "%.0f short FETCH responses/s (%.0f MB/s) and %.0f MB/s of literals; "
        "\"client CPU/wall\" is the client's own CPU time over the step's wall time, "
        "the largest of the three servers (near 1.0: the client, not the server, "
        "set the pace)." % (lines["responses_per_s"], lines["mb_per_s"], lits["mb_per_s"]),
        "",
        "Server CPU of the session process (utime+stime, seconds; for conc_all the sum "
        "over the 20 session processes; 10 ms resolution):", "", cpu, "",
        "What each server answered (sanity check):", "", checks, ""]
    for n in names:
        for note in results[n]["notes"]:
            text.append("- %s: %s" % (LABELS[n], note))
    text += ["", "Machine: %s. Date: %s. Command: `%s`." % (
        meta["machine"], meta["date"], meta["command"]),
        "Versions: " + "; ".join(meta["versions"][n] for n in names) + "."]
    return "\n".join(text)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000, help="messages in INBOX")
    ap.add_argument("--folders", type=int, default=200, help="folders besides INBOX")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--servers", default="mdimap,dovecot,courier")
    ap.add_argument("--workdir", default="/tmp/mdimap-bench",
                    help="the store and the servers' hard-link copies (needs the store's "
                         "size once, plus the servers' indexes)")
    ap.add_argument("--bin-dir", default=None, help="where mdimap-listen and mdimapd are "
                    "(default $CARGO_TARGET_DIR/release or target/release)")
    ap.add_argument("--logins", type=int, default=50, help="connect+LOGIN+LOGOUT repetitions")
    ap.add_argument("--reps", type=int, default=5, help="sessions for SELECT/FETCH again")
    ap.add_argument("--noops", type=int, default=200)
    ap.add_argument("--bodies", type=int, default=2000)
    ap.add_argument("--appends", type=int, default=100)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--stress-clients", type=int, default=10)
    ap.add_argument("--stress-secs", type=int, default=60, help="0 skips imaptest")
    ap.add_argument("--keep", action="store_true", help="keep the servers' copies and logs")
    ap.add_argument("--out", default=None, help="JSON file (default "
                    "benches/results-tcp-<messages>.json)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the servers change to the mail user after LOGIN, and "
                 "Courier's authdaemond runs in a private mount namespace")
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for n in names:
        if n not in SERVERS:
            sys.exit("unknown server %r (known: %s)" % (n, ", ".join(SERVERS)))
    if "mdimap" in names and not os.path.exists(os.path.join(bin_dir(args), "mdimap-listen")):
        sys.exit("no mdimap-listen in %s: cargo build --release --bins" % bin_dir(args))
    if "dovecot" in names and not os.path.exists(os.path.join(DOVECOT_LIB, "imap")):
        sys.exit("Dovecot not unpacked: run benches/setup_dovecot.sh first")
    if "courier" in names:
        for p, pkg in (("/usr/sbin/couriertcpd", "courier-base"),
                       ("/usr/lib/courier/courier/imaplogin", "courier-imap"),
                       (COURIER_AUTHDAEMOND, "courier-authdaemon"),
                       ("/usr/sbin/makeuserdb", "courier-authlib-userdb")):
            if not os.path.exists(p):
                sys.exit("%s missing: apt-get install %s" % (p, pkg))

    os.makedirs(args.workdir, exist_ok=True)
    os.chmod(args.workdir, 0o755)
    print("client ceiling ...", file=sys.stderr)
    ceiling = client_ceiling()
    source = prepare_store(args.workdir, args.messages, args.seed, args.folders)
    pwhash = password_hash()
    results = {}
    for n in names:
        t0 = time.time()
        results[n] = run_server(n, args, source, pwhash)
        results[n]["seconds"] = time.time() - t0
        print("  %s done in %.0f s" % (n, results[n]["seconds"]), file=sys.stderr)

    size = subprocess.run(["du", "-sm", source], capture_output=True, text=True).stdout.split()[0]
    meta = {"messages": args.messages, "folders": args.folders, "seed": args.seed,
            "store_mb": int(size), "stress_clients": args.stress_clients,
            "stress_secs": args.stress_secs,
            "machine": "%s, %d CPUs, %.0f GB RAM, kernel %s" % (
                cpu_model(), os.cpu_count(),
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                platform.release()),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python3 benches/run.py " + " ".join(sys.argv[1:]),
            "versions": versions(args)}
    text = report(results, names, meta, ceiling)
    print(text)
    out = args.out or os.path.join(HERE, "results-tcp-%d.json" % args.messages)
    with open(out, "w") as f:
        json.dump({"meta": meta, "ceiling": ceiling, "results": results, "markdown": text},
                  f, indent=1)
    print("\n(saved to %s)" % out, file=sys.stderr)


if __name__ == "__main__":
    main()
