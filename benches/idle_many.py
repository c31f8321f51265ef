#!/usr/bin/env python3
"""IDLE at scale (issue 8, point 7): many IDLE sessions of virtual users who
share one uid, on the kernel's default inotify limits.

For each server (mdimap through mdimap-listen, Dovecot as in benches/run.py)
and each layout, N users (user0000 ...) who all map to uid/gid 65534 (nobody)
log in over TCP on 127.0.0.1 with LOGIN, SELECT INBOX and IDLE, one session
each, all at once.  Layouts:

  own     every user has a small maildir of its own (5 messages); one
          message is then delivered into each of the N maildirs
  shared  every user's maildir is the same folder (20 messages), the issue's
          "sessions on one folder" case; one message is delivered into it

Delivery is what an MTA does: write the file in tmp/, rename it into new/.
A thread delivers and stamps each rename; the main thread waits on every
socket at once (selectors/epoll) and stamps the first `* n EXISTS` above the
count SELECT gave.  Reported per run: sessions that saw the delivery within
1 s, median, p99 and max latency, and sessions that never saw it within
--wait seconds; how many session processes hold an inotify instance; and,
measured while all sessions idle before the delivery, PSS and RSS summed over
the session processes (from /proc/<pid>/smaps_rollup), per session, with the
server's other processes (mdimap-listen; Dovecot's master, auth, log, stats,
...) listed apart, and the CPU time the idle sessions use (schedstat) over
--idle-cpu seconds.

    cargo build --release --bins             # $CARGO_TARGET_DIR/release or target/release
    benches/setup_dovecot.sh                 # once, for Dovecot
    python3 benches/idle_many.py --sessions 1000

Run as root (the servers change to uid 65534 after LOGIN).  The script reads
fs.inotify.max_user_instances and prints it; it never changes it.  Nothing
here asserts a time: the output is a Markdown table (printed, and saved with
the raw latencies as JSON in benches/results-idle-<N>.json).
"""

import argparse
import json
import os
import platform
import re
import resource
import selectors
import shutil
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (benches/run.py: server start-up, shared with the TCP benchmark)

HERE = run.HERE
PASSWORD = run.PASSWORD
UID, GID = run.MAIL_UID, run.MAIL_GID
INOTIFY_LIMIT_PATH = "/proc/sys/fs/inotify/max_user_instances"
WINDOW = 32  # logins in flight at once: a burst of clients, not a flood

MESSAGE = (b"From: Sender <sender@example.org>\r\n"
           b"To: %s@example.org\r\n"
           b"Subject: %s\r\n"
           b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
           b"Message-ID: <%s@bench.example.org>\r\n"
           b"\r\n"
           b"A short message for the IDLE benchmark.\r\n")


# ---------------------------------------------------------------------------
# Maildirs and the delivery
# ---------------------------------------------------------------------------

def make_maildir(path, messages, owner):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(messages):
        name = "%d.M%dP1.seed%d:2,S" % (1700000000 + i, i, i)
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(MESSAGE % (owner.encode(), b"seed %d" % i, b"seed%d.%s" % (i, owner.encode())))
    for root, dirs, files in os.walk(path):
        os.chown(root, UID, GID)
        for f in files:
            os.chown(os.path.join(root, f), UID, GID)


def deliver(maildir, n):
    """One message the way an MTA delivers it; returns the moment of the rename."""
    name = "%d.M%dP%d.idlebench" % (int(time.time()), n, os.getpid())
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(MESSAGE % (b"rcpt", b"delivery %d" % n, b"d%d" % n))
        f.flush()
        os.fsync(f.fileno())
    os.chown(tmp, UID, GID)
    os.rename(tmp, os.path.join(maildir, "new", name))
    return time.monotonic()


# ---------------------------------------------------------------------------
# Servers: the start-up of benches/run.py, with N users and raised limits
# ---------------------------------------------------------------------------

def start_mdimap(args, run_dir, users, pwhash):
    port = run.free_port()
    path = os.path.join(run_dir, "users")
    with open(path, "w") as f:
        for name, home, maildir in users:
            f.write("%s:%s:%d:%d:%s:%s\n" % (name, pwhash, UID, GID, home, maildir))
    os.chmod(path, 0o600)
    conf = os.path.join(run_dir, "mdimapd.conf")
    limit = args.sessions + 100
    with open(conf, "w") as f:
        f.write("# written by benches/idle_many.py: defaults (IMAP_IDLE_TIMEOUT=60),\n"
                "# except the user file and the session limits\n"
                "MDIMAP_USERFILE=%s\nMAXDAEMONS=%d\nMAXPERIP=%d\n" % (path, limit, limit))
    listen = os.path.join(run.bin_dir(args), "mdimap-listen")
    argv = [listen, "--config", conf, "--listen", "127.0.0.1:%d" % port, "--log-stderr"]
    return run.Server("mdimap", argv, port, os.path.join(run_dir, "server.log"))


def dovecot_limits(n):
    return ("# raised by benches/idle_many.py for %d sessions at once\n"
            "default_process_limit = %d\ndefault_client_limit = %d\n"
            "service imap {\n  process_limit = %d\n}\n"
            "protocol imap {\n  mail_max_userip_connections = %d\n}\n"
            % (n, n + 100, 4 * n + 1000, n + 100, n + 100))


def start_dovecot(args, run_dir, users, pwhash):
    """Dovecot as in run.py, for N users, with its process and connection
    limits raised (`mailbox_idle_check_interval` stays at its 30 s default)."""
    return run.start_dovecot_for(
        run_dir, [(name, home) for name, home, _maildir in users], pwhash,
        "benches/idle_many.py", "the process and connection limits",
        dovecot_limits(args.sessions))


SERVERS = {"mdimap": start_mdimap, "dovecot": start_dovecot}
SESSION_COMM = {"mdimap": "mdimapd", "dovecot": "imap"}
LABELS = {"mdimap": "mdimap", "dovecot": "Dovecot"}


# ---------------------------------------------------------------------------
# The client: N sessions driven by one epoll loop
# ---------------------------------------------------------------------------

class Session:
    """One connection's state: greeting -> LOGIN -> SELECT -> IDLE."""

    def __init__(self, index, user):
        self.index = index
        self.user = user
        self.sock = None
        self.buf = b""
        self.state = "connect"
        self.exists = None      # from SELECT
        self.seen_at = None     # monotonic time of the first larger EXISTS
        self.seen_line = None
        self.error = None
        self.client_port = None
        self.pid = None         # the server process serving it (census)
        self.inotify = False    # whether that process holds an inotify instance

    def lines(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            line, self.buf = self.buf[:i], self.buf[i + 2:]
            yield line


def open_sessions(port, sessions, timeout):
    """Brings every session into IDLE, WINDOW logins at a time."""
    sel = selectors.DefaultSelector()
    waiting = list(sessions)
    waiting.reverse()
    busy = 0
    done = 0
    deadline = time.monotonic() + timeout

    def fail(s, why):
        nonlocal busy, done
        s.error = why
        s.state = "failed"
        try:
            sel.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        s.sock.close()
        busy -= 1
        done += 1

    while done < len(sessions):
        while waiting and busy < WINDOW:
            s = waiting.pop()
            s.sock = socket.create_connection(("127.0.0.1", port))
            s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sock.setblocking(False)
            s.client_port = s.sock.getsockname()[1]
            s.state = "greeting"
            sel.register(s.sock, selectors.EVENT_READ, s)
            busy += 1
        if time.monotonic() > deadline:
            for key in list(sel.get_map().values()):
                fail(key.data, "timeout in state %s" % key.data.state)
            break
        for key, _ in sel.select(1.0):
            s = key.data
            try:
                data = s.sock.recv(65536)
            except OSError as e:
                fail(s, "recv: %s" % e)
                continue
            if not data:
                fail(s, "closed by server in state %s" % s.state)
                continue
            s.buf += data
            for line in s.lines():
                if s.state == "greeting":
                    if not line.startswith(b"* OK"):
                        fail(s, "greeting %r" % line[:80])
                        break
                    s.sock.sendall(b"a LOGIN %s %s\r\n" % (s.user.encode(), PASSWORD.encode()))
                    s.state = "login"
                elif s.state == "login" and line.startswith(b"a "):
                    if not line.startswith(b"a OK"):
                        fail(s, "LOGIN %r" % line[:120])
                        break
                    s.sock.sendall(b"b SELECT INBOX\r\n")
                    s.state = "select"
                elif s.state == "select":
                    if line.startswith(b"* ") and line.endswith(b" EXISTS"):
                        s.exists = int(line.split()[1])
                    elif line.startswith(b"b "):
                        if not line.startswith(b"b OK") or s.exists is None:
                            fail(s, "SELECT %r" % line[:120])
                            break
                        s.sock.sendall(b"c IDLE\r\n")
                        s.state = "idle-wait"
                elif s.state == "idle-wait" and line.startswith(b"+"):
                    s.state = "idle"
                    sel.unregister(s.sock)
                    busy -= 1
                    done += 1
                    break
                elif s.state == "idle-wait" and line.startswith(b"c "):
                    fail(s, "IDLE %r" % line[:120])
                    break
    sel.close()


def watch(sessions, delivered, wait):
    """Waits on every idling socket for its first EXISTS above SELECT's count,
    until all have seen it or `wait` seconds after the last delivery;
    `delivered` holds the rename times the delivery thread fills in (None
    until each is done)."""
    sel = selectors.EpollSelector()
    for s in sessions:
        if s.state == "idle":
            sel.register(s.sock, selectors.EVENT_READ, s)
    pending = len(sel.get_map())
    end = None
    while pending:
        now = time.monotonic()
        if end is None and all(t is not None for t in delivered):
            end = max(delivered) + wait
        if end is not None and now > end:
            break
        events = sel.select(0.2)
        now = time.monotonic()
        for key, _ in events:
            s = key.data
            try:
                data = s.sock.recv(65536)
            except OSError as e:
                data = b""
                s.error = "recv: %s" % e
            if not data:
                s.error = s.error or "closed by server while idle"
                sel.unregister(s.sock)
                pending -= 1
                continue
            s.buf += data
            for line in s.lines():
                parts = line.split()
                if (len(parts) == 3 and parts[0] == b"*" and parts[2] == b"EXISTS"
                        and parts[1].isdigit() and int(parts[1]) > s.exists):
                    s.seen_at = now
                    s.seen_line = line.decode("ascii", "replace")
                    break
            if s.seen_at is not None:
                sel.unregister(s.sock)
                pending -= 1
    sel.close()


# ---------------------------------------------------------------------------
# /proc: which process serves which session, its memory, its inotify
# ---------------------------------------------------------------------------

def server_sockets(server_port):
    """client port -> inode of the server's end of that connection."""
    out = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport == server_port and fields[9] != "0":
                out[rport] = fields[9]
    return out


def process_table():
    """pid -> (comm, parent pid, socket inodes, inotify instances)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            inodes, inotify = set(), 0
            fd_dir = "/proc/%d/fd" % pid
            for fd in os.listdir(fd_dir):
                try:
                    target = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
                elif target == "anon_inode:inotify":
                    inotify += 1
        except (OSError, ValueError, IndexError):
            continue
        table[pid] = (comm, ppid, inodes, inotify)
    return table


def memory(pid):
    """(Pss, Rss, Pss_Anon) in KiB from smaps_rollup."""
    pss = rss = anon = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss_Anon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return pss, rss, anon


def cpu_seconds(pid):
    """Time on a CPU, from schedstat (nanoseconds): utime and stime count in
    clock ticks, and a session that wakes for a few stat(2) calls a second is
    rarely running when a tick samples it."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return run.cpu_seconds(pid)


def census(name, server, sessions):
    """Finds each session's process; sums memory and inotify instances."""
    socks = server_sockets(server.port)
    table = process_table()
    by_inode = {}
    for pid, (_comm, _ppid, inodes, _ino) in table.items():
        for inode in inodes:
            by_inode.setdefault(inode, []).append(pid)
    session_pids = set()
    missing = 0
    for s in sessions:
        if s.state != "idle":
            continue
        holders = [p for p in by_inode.get(socks.get(s.client_port), [])
                   if table[p][0] == SESSION_COMM[name]]
        if holders:
            s.pid = max(holders)
            s.inotify = table[s.pid][3] > 0
            session_pids.add(s.pid)
        else:
            missing += 1
    pss = rss = anon = inotify = 0
    for pid in session_pids:
        p, r, a = memory(pid)
        pss += p
        rss += r
        anon += a
        if table[pid][3]:
            inotify += 1
    # The server's other processes: the started process and its descendants.
    children = {}
    for pid, (_comm, ppid, _inodes, _ino) in table.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [server.proc.pid]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    others = {}
    for pid in tree:
        comm = table[pid][0]
        if pid not in session_pids:
            p, r, _a = memory(pid)
            o = others.setdefault(comm, {"count": 0, "pss_kib": 0, "rss_kib": 0})
            o["count"] += 1
            o["pss_kib"] += p
            o["rss_kib"] += r
    n = len(session_pids)
    return {"session_processes": n, "unmatched_sessions": missing,
            "with_inotify": inotify,
            "pss_kib_total": pss, "rss_kib_total": rss, "pss_anon_kib_total": anon,
            "pss_kib_per_session": pss / n if n else float("nan"),
            "rss_kib_per_session": rss / n if n else float("nan"),
            "pss_anon_kib_per_session": anon / n if n else float("nan"),
            "others": others}


# ---------------------------------------------------------------------------
# One run: a server, a layout
# ---------------------------------------------------------------------------

def pct(values, p):
    return run.pct(values, p) if values else float("nan")


def one_run(name, layout, args, pwhash):
    run_dir = os.path.join(args.workdir, "%s-%s" % (name, layout))
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    os.chmod(run_dir, 0o755)
    users = []
    if layout == "shared":
        home = os.path.join(run_dir, "shared-home")
        maildir = os.path.join(home, "Maildir")
        make_maildir(maildir, 20, "shared")
        os.chown(home, UID, GID)
        for i in range(args.sessions):
            users.append(("user%04d" % i, home, maildir))
        targets = [maildir]
        target_of = [0] * args.sessions
    else:
        homes = os.path.join(run_dir, "homes")
        os.makedirs(homes)
        os.chmod(homes, 0o755)
        targets = []
        for i in range(args.sessions):
            user = "user%04d" % i
            home = os.path.join(homes, user)
            maildir = os.path.join(home, "Maildir")
            make_maildir(maildir, 5, user)
            os.chown(home, UID, GID)
            users.append((user, home, maildir))
            targets.append(maildir)
        target_of = list(range(args.sessions))

    print("%s/%s: starting, %d sessions ..." % (name, layout, args.sessions), file=sys.stderr)
    server = SERVERS[name](args, run_dir, users, pwhash)
    sessions = [Session(i, u[0]) for i, u in enumerate(users)]
    result = {"server": name, "layout": layout, "sessions": args.sessions}
    try:
        t0 = time.monotonic()
        open_sessions(server.port, sessions, timeout=args.login_timeout)
        result["setup_s"] = time.monotonic() - t0
        idling = [s for s in sessions if s.state == "idle"]
        failed = [s for s in sessions if s.state != "idle"]
        result["idling"] = len(idling)
        result["setup_errors"] = sorted({s.error or "not started" for s in failed})[:10]
        print("  %d idling after %.1f s, %d failed %s" % (len(idling), result["setup_s"],
                                                          len(failed), result["setup_errors"][:3]),
              file=sys.stderr)
        time.sleep(args.settle)  # let every session reach its wait
        result["memory"] = census(name, server, sessions)
        m = result["memory"]
        print("  PSS %.0f KiB/session over %d processes, %d with inotify" % (
            m["pss_kib_per_session"], m["session_processes"], m["with_inotify"]),
            file=sys.stderr)

        # What idling costs: CPU time of all session processes over a while.
        pids = sorted({s.pid for s in idling if s.pid})
        c0, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
        time.sleep(args.idle_cpu)
        c1, t1 = [cpu_seconds(p) for p in pids], time.monotonic()
        used = sum(b - a for a, b in zip(c0, c1) if a == a and b == b)
        result["idle_cpu_pct"] = 100.0 * used / (t1 - t0)
        with open("/proc/loadavg") as f:
            result["loadavg"] = f.read().split()[0]  # others' work on a shared machine
        delivered = [None] * len(targets)

        def deliverer():
            for k, maildir in enumerate(targets):
                delivered[k] = deliver(maildir, k)

        th = threading.Thread(target=deliverer)
        t_start = time.monotonic()
        th.start()
        watch(sessions, delivered, args.wait)
        th.join()
        result["delivery_spread_s"] = max(delivered) - t_start
        lat = []
        never = 0
        for s in idling:
            if s.seen_at is None:
                never += 1
            else:
                lat.append(s.seen_at - delivered[target_of[s.index]])
        result["latencies_s"] = lat
        for kind, flag in (("inotify", True), ("no_inotify", False)):
            part = [s.seen_at - delivered[target_of[s.index]] for s in idling
                    if s.inotify == flag and s.seen_at is not None]
            result[kind] = {"sessions": sum(1 for s in idling if s.inotify == flag),
                            "within_1s": sum(1 for v in part if v <= 1.0),
                            "min_s": min(part) if part else float("nan"),
                            "median_s": statistics.median(part) if part else float("nan"),
                            "max_s": max(part) if part else float("nan")}
        result["never"] = never
        result["within_1s"] = sum(1 for v in lat if v <= 1.0)
        result["median_s"] = statistics.median(lat) if lat else float("nan")
        result["p99_s"] = pct(lat, 99)
        result["max_s"] = max(lat) if lat else float("nan")
        result["lost"] = sorted({s.error for s in idling if s.error})[:10]
        print("  within 1 s: %d/%d, median %.3f s, p99 %.3f s, max %.3f s, never %d" % (
            result["within_1s"], len(idling), result["median_s"], result["p99_s"],
            result["max_s"], never), file=sys.stderr)
        log_path = server.log_path if name == "mdimap" else os.path.join(run_dir, "server.log")
        try:
            with open(log_path, errors="replace") as f:
                log = f.read()
        except OSError:
            log = ""
        result["log_no_inotify"] = (log.count("IDLE without inotify") if name == "mdimap"
                                    else log.count("Inotify instance limit"))
        # Warnings and errors before the shutdown, digits folded, for the JSON.
        marks = (("WARN:", "ERROR:") if name == "mdimap"
                 else ("Warning:", "Error:", "Fatal:", "Panic:"))
        kinds = {}
        for line in log.splitlines():
            if any(m in line for m in marks):
                key = re.sub(r"\d+", "N", line.split(": ", 1)[-1])[:200]
                kinds[key] = kinds.get(key, 0) + 1
        result["log_warnings"] = kinds
        if kinds:
            print("  log warnings/errors: %s" % sorted(kinds.items(), key=lambda kv: -kv[1])[:5],
                  file=sys.stderr)
    finally:
        for s in sessions:
            if s.sock is not None:
                s.sock.close()
        server.stop()
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def ms(v):
    return "–" if v != v else "{:,.0f}".format(v * 1000)


def report(results, names, layouts, meta):
    out = []
    out.append("Machine: %s. Date: %s. %s. fs.inotify.max_user_instances = %s "
               "(not changed). Command: `%s`." % (
                   meta["machine"], meta["date"],
                   "; ".join(meta["versions"][n] for n in names if n in meta["versions"]),
                   meta["inotify_limit"], meta["command"]))
    out.append("")
    header = "| %d IDLE sessions, one uid |" % meta["sessions"]
    cols = [(n, l) for l in layouts for n in names]
    header += "".join(" %s, %s |" % (LABELS[n], l) for n, l in cols)
    out.append(header)
    out.append("|---|" + "---:|" * len(cols))

    def row(label, fn):
        cells = []
        for n, l in cols:
            r = results.get((n, l))
            cells.append(fn(r) if r else "–")
        out.append("| %s |" % label + "".join(" %s |" % c for c in cells))

    row("sessions idling (of %d)" % meta["sessions"], lambda r: "{:,}".format(r["idling"]))
    row("session processes holding an inotify instance",
        lambda r: "{:,}".format(r["memory"]["with_inotify"]))
    row("saw the delivery within 1 s", lambda r: "{:,}".format(r["within_1s"]))
    row("… of them holding inotify / not", lambda r: "%d of %d / %d of %d" % (
        r["inotify"]["within_1s"], r["inotify"]["sessions"],
        r["no_inotify"]["within_1s"], r["no_inotify"]["sessions"]))
    row("latency median, ms", lambda r: ms(r["median_s"]))
    row("latency p99, ms", lambda r: ms(r["p99_s"]))
    row("latency max, ms", lambda r: ms(r["max_s"]))
    row("never within %d s" % meta["wait"], lambda r: "{:,}".format(r["never"]))
    row("latency with inotify: min / median / max, ms", lambda r: "%s / %s / %s" % (
        ms(r["inotify"]["min_s"]), ms(r["inotify"]["median_s"]), ms(r["inotify"]["max_s"])))
    row("latency without: min / median / max, ms", lambda r: "%s / %s / %s" % (
        ms(r["no_inotify"]["min_s"]), ms(r["no_inotify"]["median_s"]),
        ms(r["no_inotify"]["max_s"])))
    row("PSS per idle session, KiB", lambda r: "{:,.0f}".format(r["memory"]["pss_kib_per_session"]))
    row("… of it anonymous (Pss_Anon), KiB",
        lambda r: "{:,.0f}".format(r["memory"]["pss_anon_kib_per_session"]))
    row("RSS per idle session, KiB", lambda r: "{:,.0f}".format(r["memory"]["rss_kib_per_session"]))
    row("PSS of all session processes, MiB",
        lambda r: "{:,.1f}".format(r["memory"]["pss_kib_total"] / 1024))
    row("other server processes (count × comm: PSS MiB)",
        lambda r: "; ".join("%d × %s: %.1f" % (o["count"], c, o["pss_kib"] / 1024)
                            for c, o in sorted(r["memory"]["others"].items())))
    row("CPU of all idle sessions, %% of one core (%d s, before the delivery)" % meta["idle_cpu"],
        lambda r: "%.2f" % r["idle_cpu_pct"])
    row("time to bring all into IDLE, s", lambda r: "%.1f" % r["setup_s"])
    row("delivery spread (first to last rename), ms", lambda r: ms(r["delivery_spread_s"]))
    row("load average (1 min) at the delivery", lambda r: r["loadavg"])
    if "mdimap" in names and "dovecot" in names:
        out.append("")
        out.append("| mdimap / Dovecot |" + "".join(" %s |" % l for l in layouts))
        out.append("|---|" + "---:|" * len(layouts))
        for label, key in (("PSS per idle session", "pss_kib_per_session"),):
            cells = []
            for l in layouts:
                a, b = results.get(("mdimap", l)), results.get(("dovecot", l))
                cells.append("%.2f" % (a["memory"][key] / b["memory"][key]) if a and b else "–")
            out.append("| %s |" % label + "".join(" %s |" % c for c in cells))
        for label, key in (("latency median", "median_s"), ("latency p99", "p99_s")):
            cells = []
            for l in layouts:
                a, b = results.get(("mdimap", l)), results.get(("dovecot", l))
                cells.append("%.2f" % (a[key] / b[key]) if a and b and b[key] else "–")
            out.append("| %s |" % label + "".join(" %s |" % c for c in cells))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--servers", default="mdimap,dovecot")
    ap.add_argument("--layouts", default="own,shared")
    ap.add_argument("--wait", type=float, default=70.0,
                    help="seconds after the last delivery before a session counts as never")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds between the last IDLE and the memory census")
    ap.add_argument("--idle-cpu", type=float, default=10.0,
                    help="seconds over which the idle sessions' CPU time is measured")
    ap.add_argument("--login-timeout", type=float, default=300.0)
    ap.add_argument("--workdir", default="/tmp/mdimap-idle")
    ap.add_argument("--bin-dir", default=None, help="where mdimap-listen and mdimapd are "
                    "(default $CARGO_TARGET_DIR/release or target/release)")
    ap.add_argument("--keep", action="store_true", help="keep each run's maildirs and logs")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the servers change to uid 65534 after LOGIN")
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    layouts = [l.strip() for l in args.layouts.split(",") if l.strip()]
    for n in names:
        if n not in SERVERS:
            sys.exit("unknown server %r (known: %s)" % (n, ", ".join(SERVERS)))
    for l in layouts:
        if l not in ("own", "shared"):
            sys.exit("unknown layout %r (own, shared)" % l)
    if "mdimap" in names and not os.path.exists(os.path.join(run.bin_dir(args), "mdimap-listen")):
        sys.exit("no mdimap-listen in %s: cargo build --release --bins" % run.bin_dir(args))
    if "dovecot" in names and not os.path.exists(os.path.join(run.DOVECOT_LIB, "imap")):
        sys.exit("Dovecot not unpacked: run benches/setup_dovecot.sh first")

    # The client holds one socket per session (plus the selectors).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.sessions * 2 + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY
                                                    else want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    with open(INOTIFY_LIMIT_PATH) as f:
        inotify_limit = f.read().strip()
    print("fs.inotify.max_user_instances = %s (left as it is); client RLIMIT_NOFILE = %d"
          % (inotify_limit, soft), file=sys.stderr)

    os.makedirs(args.workdir, exist_ok=True)
    os.chmod(args.workdir, 0o755)
    pwhash = run.password_hash()
    results = {}
    for l in layouts:
        for n in names:
            t0 = time.time()
            results[(n, l)] = one_run(n, l, args, pwhash)
            results[(n, l)]["seconds"] = time.time() - t0
            print("  %s/%s done in %.0f s" % (n, l, results[(n, l)]["seconds"]), file=sys.stderr)

    versions = run.versions(args)
    meta = {"sessions": args.sessions, "wait": args.wait, "idle_cpu": args.idle_cpu, "inotify_limit": inotify_limit,
            "machine": "%s, %d CPUs, %.0f GB RAM, kernel %s" % (
                run.cpu_model(), os.cpu_count(),
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                platform.release()),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python3 benches/idle_many.py " + " ".join(sys.argv[1:]),
            "versions": {k: v for k, v in versions.items() if k in names}}
    text = report(results, names, layouts, meta)
    print(text)
    out = args.out or os.path.join(HERE, "results-idle-%d.json" % args.sessions)
    with open(out, "w") as f:
        json.dump({"meta": meta, "markdown": text,
                   "results": list(results.values())},
                  f, indent=1)
    print("\n(saved to %s)" % out, file=sys.stderr)


if __name__ == "__main__":
    main()
