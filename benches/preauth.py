#!/usr/bin/env python3
"""IMAP benchmark: mdimap against Courier-IMAP and Dovecot on the same maildir.

The second table of BENCHMARKS.md: one PREAUTH session per server on pipes,
no login and no network.  benches/run.py is the main one (LOGIN over TCP).

For each server, on a fresh copy (cp -a) of one generated maildir, this starts
the server in PREAUTH mode on a pair of pipes, plays a client workload and
times every step.  It also samples the server's CPU time (utime+stime from
/proc/<pid>/stat, before and after each step) and its peak RSS (VmHWM from
/proc/<pid>/status, just before LOGOUT).

    python3 benches/preauth.py --messages 10000          # generate + run all three
    python3 benches/preauth.py --messages 50000          # the large store
    python3 benches/preauth.py --servers mdimap,courier  # a subset

The maildir is generated once per (--messages, --seed) under --workdir and
reused.  As root, every server runs as `nobody` (setpriv), on a copy owned by
nobody: Dovecot refuses to serve mail as root, and one user for all three
keeps the comparison fair.  Dovecot must first be unpacked by
benches/setup_dovecot.sh.

Nothing here asserts a time: the output is a table (Markdown, also saved as
JSON beside it) to copy into BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import random
import re
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MDIMAPD = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                       "release", "mdimapd")
COURIER_IMAPD = "/usr/bin/imapd"
COURIER_CONFIG = "/etc/courier/imapd"
DOVECOT_ROOT = os.path.join(HERE, ".tools", "dovecot")
STEP_TIMEOUT = 1800.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
LITERAL = re.compile(rb"\{(\d+)\+?\}$")

THUNDERBIRD_FETCH = (
    b"UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc "
    b"Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To "
    b"Content-Type Reply-To)])")

STEPS = [
    ("a", "SELECT INBOX, first (no server index yet)"),
    ("b", "SELECT INBOX, second session (warm)"),
    ("c", "UID FETCH 1:* (FLAGS)"),
    ("d", "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (...)]) (Thunderbird)"),
    ("e", "FETCH 1:* (ENVELOPE BODYSTRUCTURE) (mutt / Apple Mail)"),
    ("f", "SEARCH TEXT \"zanzibar\" (full text)"),
    ("g", "SEARCH FROM \"marlowe\""),
    ("h", "STORE 1:1000 +FLAGS (\\Flagged)"),
    ("i", "200 x APPEND of a 5 KB message"),
    ("j", "500 x UID FETCH <uid> BODY.PEEK[] (random messages)"),
    ("k1", "STORE <500 random> +FLAGS.SILENT (\\Deleted)"),
    ("k2", "EXPUNGE (500 messages)"),
    ("l", "100 x NOOP (a client polling for new mail)"),
]


class ServerFailed(Exception):
    pass


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def peak_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Session:
    """One IMAP connection over the server's stdin/stdout."""

    def __init__(self, argv, cwd, env, log):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log)
        self.fd = self.proc.stdout.fileno()
        self.buf = bytearray()
        self.pos = 0
        self.tag = 0
        self.received = 0
        self.deadline = time.monotonic() + 60
        greeting = self._line()
        if not greeting.startswith(b"* PREAUTH"):
            raise ServerFailed("no PREAUTH greeting: %r" % greeting[:200])

    @property
    def pid(self):
        return self.proc.pid

    def _fill(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ServerFailed("timed out")
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            raise ServerFailed("timed out")
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise ServerFailed("server closed the connection (exit %s)" % self.proc.poll())
        if self.pos > (4 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk
        self.received += len(chunk)

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos:end])
                self.pos = end + 2
                return line
            self._fill()

    def _literal(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def _response(self, keep_literals):
        """One logical response line; literals are skipped (or kept) in place."""
        parts = []
        while True:
            line = self._line()
            parts.append(line)
            m = LITERAL.search(line)
            if not m:
                return b"".join(parts)
            data = self._literal(int(m.group(1)))
            parts.append(data if keep_literals else b"")

    def command(self, cmd, literal=None, collect=False, keep_literals=False):
        """Send one tagged command; return (untagged responses, bytes read, collected)."""
        self.tag += 1
        tag = b"T%d" % self.tag
        self.deadline = time.monotonic() + STEP_TIMEOUT
        read_before = self.received - (len(self.buf) - self.pos)
        w = self.proc.stdin
        w.write(tag + b" " + cmd + b"\r\n")
        w.flush()
        untagged, collected = 0, []
        if literal is not None:
            while True:
                line = self._response(False)
                if line.startswith(b"+"):
                    break
                if line.startswith(tag + b" "):
                    raise ServerFailed("%s refused: %r" % (cmd[:60], line[:200]))
                untagged += 1
            w.write(literal + b"\r\n")
            w.flush()
        while True:
            line = self._response(keep_literals)
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1:].split(b" ", 1)[0]
                if status != b"OK":
                    raise ServerFailed("%s: %r" % (cmd[:60].decode(), line[:300]))
                consumed = self.received - (len(self.buf) - self.pos) - read_before
                return untagged, consumed, collected
            untagged += 1
            if collect:
                collected.append(line)

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except ServerFailed:
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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
    body = []
    size = len(head)
    while size < 5120:
        line = " ".join(rng.choice(words) for _ in range(10)) + "\r\n"
        body.append(line)
        size += len(line)
    return (head + "".join(body)).encode()


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

def as_user(argv):
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv
    return argv


def base_env(home):
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C", "HOME": home,
            "USER": "nobody" if os.geteuid() == 0 else os.environ.get("USER", "bench")}


def mdimap_cmd(maildir, workdir):
    argv = as_user([MDIMAPD, "--preauth", "--maildir", maildir, "--log-stderr"]
                   + (["--config", COURIER_CONFIG] if os.path.exists(COURIER_CONFIG) else []))
    return argv, workdir, base_env(workdir)


def courier_cmd(maildir, workdir):
    # Without IMAPLOGINTAG/AUTHENTICATED imapd is a shell invocation: PREAUTH
    # as the invoking user, maildir relative to the working directory.
    argv = as_user(["/bin/sh", "-c",
                    'set -a; . "$1"; set +a; exec "$2" Maildir',
                    "courier-imapd", COURIER_CONFIG, COURIER_IMAPD])
    return argv, os.path.dirname(maildir), base_env(workdir)


def dovecot_cmd(maildir, workdir):
    conf_dir = os.path.join(workdir, "dovecot")
    os.makedirs(os.path.join(conf_dir, "run"), exist_ok=True)
    os.makedirs(os.path.join(conf_dir, "state"), exist_ok=True)
    if os.geteuid() == 0:
        user, group = "nobody", "nogroup"
    else:
        import grp
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
    conf = os.path.join(conf_dir, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("# written by benches/preauth.py: imap standalone, PREAUTH, no auth\n"
                "base_dir = %s/run\nstate_dir = %s/state\n"
                "mail_location = maildir:%s\nssl = no\nprotocols = imap\n"
                "default_login_user = %s\ndefault_internal_user = %s\n"
                "default_internal_group = %s\n" % (conf_dir, conf_dir, maildir,
                                                   user, user, group))
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody:nogroup", conf_dir], check=True)
    env = base_env(workdir)
    env["LD_LIBRARY_PATH"] = os.path.join(DOVECOT_ROOT, "usr", "lib", "dovecot")
    # doveconf -e exports the parsed settings to the environment and execs imap,
    # so the pid we hold is the imap process itself.
    argv = as_user([os.path.join(DOVECOT_ROOT, "usr", "bin", "doveconf"), "-c", conf, "-e",
                    os.path.join(DOVECOT_ROOT, "usr", "lib", "dovecot", "imap")])
    return argv, workdir, env


SERVERS = {"mdimap": mdimap_cmd, "courier": courier_cmd, "dovecot": dovecot_cmd}
LABELS = {"mdimap": "mdimap", "courier": "Courier", "dovecot": "Dovecot"}


def server_version(name):
    try:
        if name == "mdimap":
            return subprocess.run([MDIMAPD, "--version"], capture_output=True,
                                  text=True).stdout.strip()
        pkg = {"courier": "courier-imap"}.get(name)
        if pkg:
            return "courier-imap " + subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                text=True).stdout.strip()
        env = {"LD_LIBRARY_PATH": os.path.join(DOVECOT_ROOT, "usr", "lib", "dovecot")}
        out = subprocess.run([os.path.join(DOVECOT_ROOT, "usr", "sbin", "dovecot"),
                              "--version"], capture_output=True, text=True, env=env)
        return "dovecot " + out.stdout.strip()
    except OSError as e:
        return "unknown (%s)" % e


# ---------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------

def exists_of(lines):
    n = 0
    for line in lines:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            n = int(m.group(1))
    return n


def run_server(name, source, workdir, seed):
    """The whole workload on one server; returns {step: {...}} and totals."""
    run_dir = os.path.join(workdir, "run-" + name)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    maildir = os.path.join(run_dir, "Maildir")
    subprocess.run(["cp", "-a", source, maildir], check=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody:nogroup", run_dir], check=True)
    os.sync()  # start every server with no dirty pages of the copy pending
    argv, cwd, env = SERVERS[name](maildir, run_dir)
    log = open(os.path.join(workdir, "%s.log" % name), "wb")
    results = {"steps": {}, "notes": []}
    steps = results["steps"]
    rng = random.Random(seed)

    def timed(session, key, fn):
        c0 = cpu_seconds(session.pid)
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        steps[key] = {"wall": wall, "cpu": cpu_seconds(session.pid) - c0}
        return out

    sessions_cpu, peak = 0.0, 0
    try:
        # Session 1: the cold SELECT.
        s = Session(argv, cwd, env, log)
        try:
            n, _, lines = timed(s, "a", lambda: s.command(b"SELECT INBOX", collect=True))
            steps["a"]["info"] = "%d EXISTS" % exists_of(lines)
            peak = max(peak, peak_rss_kb(s.pid))
            sessions_cpu += cpu_seconds(s.pid)
        finally:
            s.logout()

        # Session 2: everything else.
        s = Session(argv, cwd, env, log)
        try:
            _, _, lines = timed(s, "b", lambda: s.command(b"SELECT INBOX", collect=True))
            exists = exists_of(lines)
            steps["b"]["info"] = "%d EXISTS" % exists

            n, nbytes, lines = timed(s, "c", lambda: s.command(b"UID FETCH 1:* (FLAGS)",
                                                               collect=True))
            uids = []
            for line in lines:
                m = re.search(rb"UID (\d+)", line)
                if m:
                    uids.append(int(m.group(1)))
            steps["c"]["info"] = "%d responses" % n

            n, nbytes, _ = timed(s, "d", lambda: s.command(THUNDERBIRD_FETCH))
            steps["d"]["info"] = "%d responses, %.1f MB" % (n, nbytes / 1e6)

            n, nbytes, _ = timed(s, "e", lambda: s.command(
                b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)"))
            steps["e"]["info"] = "%d responses, %.1f MB" % (n, nbytes / 1e6)

            _, _, lines = timed(s, "f", lambda: s.command(b'SEARCH TEXT "zanzibar"',
                                                          collect=True))
            hits = sum(len(l.split()) - 2 for l in lines if l.startswith(b"* SEARCH"))
            steps["f"]["info"] = "%d hits" % hits

            _, _, lines = timed(s, "g", lambda: s.command(b'SEARCH FROM "marlowe"',
                                                          collect=True))
            hits = sum(len(l.split()) - 2 for l in lines if l.startswith(b"* SEARCH"))
            steps["g"]["info"] = "%d hits" % hits

            last = min(1000, exists)  # 1:1000 is invalid in a smaller folder
            n, _, _ = timed(s, "h", lambda: s.command(b"STORE 1:%d +FLAGS (\\Flagged)" % last))
            steps["h"]["info"] = "%d responses" % n

            msg = append_message()
            cmd = b"APPEND INBOX (\\Seen) {%d}" % len(msg)

            def appends():
                for _ in range(200):
                    s.command(cmd, literal=msg)
            timed(s, "i", appends)
            steps["i"]["info"] = "%d bytes each" % len(msg)

            picks = [uids[rng.randrange(len(uids))] for _ in range(500)] if uids else []

            def fetch_bodies():
                total = 0
                for uid in picks:
                    _, nb, _ = s.command(b"UID FETCH %d BODY.PEEK[]" % uid)
                    total += nb
                return total
            total = timed(s, "j", fetch_bodies)
            steps["j"]["info"] = "%.1f MB" % (total / 1e6)

            _, _, lines = s.command(b"NOOP", collect=True)
            now = exists + 200
            seqs = sorted(rng.sample(range(1, now + 1), min(500, now)))
            seqset = b",".join(b"%d" % q for q in seqs)
            timed(s, "k1", lambda: s.command(b"STORE " + seqset + b" +FLAGS.SILENT (\\Deleted)"))
            _, _, lines = timed(s, "k2", lambda: s.command(b"EXPUNGE", collect=True))
            steps["k2"]["info"] = "%d expunged" % sum(1 for l in lines
                                                      if l.endswith(b" EXPUNGE"))

            def noops():
                for _ in range(100):
                    s.command(b"NOOP")
            timed(s, "l", noops)

            peak = max(peak, peak_rss_kb(s.pid))
            sessions_cpu += cpu_seconds(s.pid)
        finally:
            s.logout()
    except ServerFailed as e:
        results["notes"].append("failed: %s" % e)
        print("  %s failed: %s" % (name, e), file=sys.stderr)
    finally:
        log.close()
    results["peak_rss_kb"] = peak
    results["cpu_total"] = sessions_cpu
    shutil.rmtree(run_dir, ignore_errors=True)
    return results


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt_s(v):
    if v is None:
        return "-"
    if v < 0.01:
        return "%.4f" % v
    if v < 1:
        return "%.3f" % v
    return "%.2f" % v


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "-"
    return "%.2f" % (a / b)


def table(results, names, what):
    cols = [LABELS[n] for n in names]
    others = [n for n in names if n != "mdimap"]
    head = ["step"] + ["%s %s (s)" % (c, what) for c in cols]
    if "mdimap" in names:
        head += ["mdimap/%s" % LABELS[o] for o in others]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sums = {n: 0.0 for n in names}
    for key, desc in STEPS:
        vals = {}
        for n in names:
            st = results[n]["steps"].get(key)
            vals[n] = st[what] if st else None
            if vals[n] is not None:
                sums[n] += vals[n]
        row = ["%s. %s" % (key, desc)] + [fmt_s(vals[n]) for n in names]
        if "mdimap" in names:
            row += [ratio(vals["mdimap"], vals[o]) for o in others]
        out.append("| " + " | ".join(row) + " |")
    row = ["**total of steps**"] + [fmt_s(sums[n]) for n in names]
    if "mdimap" in names:
        row += [ratio(sums["mdimap"], sums[o]) for o in others]
    out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def summary(results, names):
    others = [n for n in names if n != "mdimap"]
    head = ["server"] + [LABELS[n] for n in names]
    if "mdimap" in names:
        head += ["mdimap/%s" % LABELS[o] for o in others]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rss = {n: results[n]["peak_rss_kb"] / 1024 for n in names}
    cpu = {n: results[n]["cpu_total"] for n in names}
    row = ["peak RSS (MB, VmHWM)"] + ["%.1f" % rss[n] for n in names]
    if "mdimap" in names:
        row += [ratio(rss["mdimap"], rss[o]) for o in others]
    out.append("| " + " | ".join(row) + " |")
    row = ["server CPU, both sessions (s)"] + ["%.2f" % cpu[n] for n in names]
    if "mdimap" in names:
        row += [ratio(cpu["mdimap"], cpu[o]) for o in others]
    out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def checks(results, names):
    out = ["| step | " + " | ".join(LABELS[n] for n in names) + " |",
           "|" + "---|" * (len(names) + 1)]
    for key, _ in STEPS:
        infos = [results[n]["steps"].get(key, {}).get("info", "") for n in names]
        if any(infos):
            out.append("| %s | %s |" % (key, " | ".join(infos)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000, help="messages in INBOX")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--servers", default="mdimap,courier,dovecot")
    ap.add_argument("--workdir", default="/tmp/mdimap-bench",
                    help="where the maildir and the copies live (needs ~3x the store)")
    ap.add_argument("--out", default=None, help="JSON results file "
                    "(default benches/results-<messages>.json)")
    args = ap.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for n in names:
        if n not in SERVERS:
            sys.exit("unknown server %r (known: %s)" % (n, ", ".join(SERVERS)))
    if "mdimap" in names and not os.path.exists(MDIMAPD):
        sys.exit("%s missing: run `cargo build --release --bins` first" % MDIMAPD)
    if "courier" in names and not os.path.exists(COURIER_IMAPD):
        sys.exit("%s missing: apt-get install courier-imap" % COURIER_IMAPD)
    if "dovecot" in names and not os.path.exists(os.path.join(DOVECOT_ROOT, "usr/lib/dovecot/imap")):
        sys.exit("Dovecot not unpacked: run benches/setup_dovecot.sh first")

    os.makedirs(args.workdir, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(args.workdir, 0o755)
    source = os.path.join(args.workdir, "src-%d-seed%d" % (args.messages, args.seed), "Maildir")
    if not os.path.exists(source):
        os.makedirs(os.path.dirname(source), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_maildir.py"), source,
                        "--messages", str(args.messages), "--seed", str(args.seed)],
                       check=True)

    results = {}
    for n in names:
        print("running %s ..." % n, file=sys.stderr)
        t0 = time.time()
        results[n] = run_server(n, source, args.workdir, args.seed)
        results[n]["version"] = server_version(n)
        print("  %s done in %.0f s" % (n, time.time() - t0), file=sys.stderr)

    size = subprocess.run(["du", "-sm", source], capture_output=True, text=True).stdout.split()[0]
    meta = {"messages": args.messages, "seed": args.seed, "store_mb": int(size),
            "machine": "%s, %s, %d CPUs, kernel %s" % (
                platform.node(), cpu_model(), os.cpu_count(), platform.release()),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "versions": {n: results[n]["version"] for n in names}}
    report = ["## %d messages in INBOX (%d MB store, seed %d)" % (
        args.messages, meta["store_mb"], args.seed), "",
        "Wall time per step (client-observed, seconds; ratio < 1 means mdimap is faster):",
        "", table(results, names, "wall"), "",
        "Server CPU per step (utime+stime of the server process, seconds):", "",
        table(results, names, "cpu"), "", summary(results, names), "",
        "What each server answered (sanity check):", "", checks(results, names), ""]
    for n in names:
        for note in results[n]["notes"]:
            report.append("- %s: %s" % (LABELS[n], note))
    report.append("")
    report.append("Machine: %s; %s" % (meta["machine"], meta["date"]))
    report.append("Versions: " + "; ".join(meta["versions"].values()))
    text = "\n".join(report)
    print(text)
    out = args.out or os.path.join(HERE, "results-%d.json" % args.messages)
    with open(out, "w") as f:
        json.dump({"meta": meta, "results": results, "markdown": text}, f, indent=1)
    print("\n(saved to %s)" % out, file=sys.stderr)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
