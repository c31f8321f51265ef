#!/usr/bin/env python3
"""A folder of a million small messages: can mdimap select it, fetch its fast
items, search it by header and append to it, how long does SELECT take once
its index exists, and how much memory does the session hold?

Issue 8, acceptance point 6: SELECT again < 0.5 s and session RSS < 40 MiB at
1,000,000 messages.  Too slow for CI (tests/index.rs has a 20,000-message
version that checks the same reopen without timing it); the numbers go into
BENCHMARKS.md.

    cargo build --release --bins          # $CARGO_TARGET_DIR/release or target/release
    python3 benches/million.py            # 1,000,000 messages, ~1 GB on disk
    python3 benches/million.py --messages 100000
    python3 benches/million.py --store /tmp/mdimap-bench/src-10000-seed1-f200/Maildir

The store is generated once under --workdir (small messages written straight
into cur/ with Courier-style names, as a mail reader that has seen them would
leave them) and copied (cp -al) for each run, so every run starts without a
UID database or index.  One mdimapd per session, PREAUTH on pipes, as the
invoking user.  Sessions, in order:

  1. cold: SELECT INBOX (numbers every message, writes courierimapuiddb),
     FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE) (reads every message),
     UID SEARCH SUBJECT, APPEND, LOGOUT (writes the index);
  2. SELECT INBOX again, after the folder's times have aged past the racy
     window: the index is not trusted yet (the cold session changed the
     folder), so this one scans once more and writes a settled index;
  3. --reps sessions: SELECT INBOX (from the index), FETCH 1:* (UID FLAGS
     RFC822.SIZE INTERNALDATE), UID SEARCH SUBJECT; VmRSS after each, VmHWM
     before LOGOUT;
  4. a last session: SELECT INBOX, APPEND (an APPEND changes the folder, so
     the session after it scans once more, as session 2 did).

Each step's wall time as the client sees it and the session's CPU time
(utime+stime, 10 ms resolution).  Nothing is asserted.
"""

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
STEP_TIMEOUT = 3600.0

APPEND_MESSAGE = (b"From: Someone <someone@example.org>\r\nTo: user@example.org\r\n"
                  b"Subject: appended invoice\r\nDate: Mon, 7 Aug 2023 10:00:00 +0000\r\n"
                  b"Message-ID: <appended@example.org>\r\n\r\nA small appended message.\r\n")
SUBJECT_WORD = b"invoice"


def mdimapd_path(args):
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    path = os.path.join(args.bin_dir or os.path.join(target, "release"), "mdimapd")
    if not os.path.exists(path):
        sys.exit("no %s: cargo build --release --bins first" % path)
    return path


def proc_field(pid, field):
    """A field of /proc/<pid>/status in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Session:
    """One PREAUTH session of mdimapd on pipes."""

    def __init__(self, mdimapd, maildir, log):
        self.proc = subprocess.Popen(
            [mdimapd, "--preauth", "--maildir", maildir, "--log-stderr"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.fd = self.proc.stdout.fileno()
        self.buf = bytearray()
        self.pos = 0
        self.tag = 0
        line = self._line(time.monotonic() + 60)
        if not line.startswith(b"* PREAUTH"):
            raise SystemExit("no PREAUTH greeting: %r" % line[:200])

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([self.fd], [], [], max(left, 0))
        if not ready:
            raise SystemExit("timed out")
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise SystemExit("mdimapd closed the connection (exit %s)" % self.proc.poll())
        if self.pos > (4 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self, deadline):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos:end])
                self.pos = end + 2
                return line
            self._fill(deadline)

    def command(self, cmd, literal=None):
        """Sends one command; returns (seconds, session CPU seconds, untagged lines)."""
        self.tag += 1
        tag = b"T%d " % self.tag
        deadline = time.monotonic() + STEP_TIMEOUT
        cpu = cpu_seconds(self.proc.pid)
        start = time.monotonic()
        w = self.proc.stdin
        if literal is None:
            w.write(tag + cmd + b"\r\n")
        else:
            w.write(tag + cmd + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        w.flush()
        lines = []
        while True:
            line = self._line(deadline)
            if line.startswith(tag):
                wall = time.monotonic() - start
                if not line[len(tag):].startswith(b"OK"):
                    raise SystemExit("%s: %r" % (cmd[:60], line[:200]))
                return wall, cpu_seconds(self.proc.pid) - cpu, lines
            if len(lines) < 5 or line.startswith(b"* SEARCH"):
                lines.append(line)

    def logout(self):
        start = time.monotonic()
        self.command(b"LOGOUT")
        self.proc.stdin.close()
        self.proc.wait(timeout=STEP_TIMEOUT)
        return time.monotonic() - start


def generate(path, n):
    """n small messages straight into cur/, Courier-style names, fixed dates."""
    tmp = path + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(tmp, sub))
    cur = os.path.join(tmp, "cur")
    words = [b"invoice", b"meeting", b"report", b"lunch", b"release", b"budget", b"travel"]
    start = time.monotonic()
    base = 1_600_000_000
    for i in range(n):
        subject = b"%s %d" % (words[i % len(words)] if i % 37 else b"invoice", i)
        body = (b"From: Sender %d <s%d@example.org>\nTo: user@example.org\nSubject: %s\n"
                b"Date: Sun, 13 Sep 2020 12:26:40 +0000\nMessage-ID: <%d@gen.example>\n\n"
                b"Message number %d.\n" % (i % 500, i % 500, subject, i, i))
        t = base + i
        name = "%d.M%06dP1V0000000000000801I%016X.gen.example,S=%d:2,%s" % (
            t, i % 1000000, i, len(body), "S" if i % 3 else "")
        fd = os.open(os.path.join(cur, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, body)
        os.utime(fd, (t, t))
        os.close(fd)
        if i and i % 100000 == 0:
            print("  %d messages, %.0f s" % (i, time.monotonic() - start), flush=True)
    os.rename(tmp, path)


def age(maildir):
    """Times of what a change moves, 20 s back: the next scan's stamp is settled."""
    then = time.time() - 20
    for p in ("cur", "new", "courierimapuiddb", "courierimapkeywords"):
        full = os.path.join(maildir, p)
        if os.path.exists(full):
            os.utime(full, (then, then))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--store", help="use this maildir (copied) instead of generating one")
    ap.add_argument("--workdir", default="/tmp/mdimap-million")
    ap.add_argument("--reps", type=int, default=3, help="sessions on the warm index")
    ap.add_argument("--bin-dir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the maildir of the run")
    ap.add_argument("--out", default=None, help="JSON file (default benches/results-million-<N>.json)")
    args = ap.parse_args()
    mdimapd = mdimapd_path(args)
    os.makedirs(args.workdir, exist_ok=True)
    if args.store:
        source = os.path.abspath(args.store)
        count = len(os.listdir(os.path.join(source, "cur"))) + len(os.listdir(os.path.join(source, "new")))
    else:
        source = os.path.join(args.workdir, "src-%d" % args.messages)
        count = args.messages
        if not os.path.isdir(source):
            need = args.messages * 4096 * 1.1
            free = shutil.disk_usage(args.workdir).free
            if free < need * 1.2:
                sys.exit("%s has %.1f GB free, the store needs about %.1f GB"
                         % (args.workdir, free / 1e9, need / 1e9))
            print("generating %d messages in %s ..." % (args.messages, source), flush=True)
            t = time.monotonic()
            generate(source, args.messages)
            print("  done in %.0f s" % (time.monotonic() - t), flush=True)
    run = os.path.join(args.workdir, "run")
    shutil.rmtree(run, ignore_errors=True)
    print("copying (cp -al) ...", flush=True)
    subprocess.run(["cp", "-al", source, run], check=True)
    for f in ("courierimapuiddb", "mdimapindex", "mdimapcache"):
        try:
            os.unlink(os.path.join(run, f))
        except FileNotFoundError:
            pass
    subprocess.run(["sync"], check=True)
    log = open(os.path.join(args.workdir, "mdimapd.log"), "ab")
    results = {"messages": count, "steps": {}}

    def record(key, wall, cpu):
        results["steps"].setdefault(key, []).append((wall, cpu))
        print("  %-28s %9.3f s  (cpu %.2f s)" % (key, wall, cpu), flush=True)

    search = b"UID SEARCH SUBJECT " + SUBJECT_WORD
    fast = b"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)"

    print("session 1 (cold)", flush=True)
    s = Session(mdimapd, run, log)
    w, c, lines = s.command(b"SELECT INBOX")
    record("select_cold", w, c)
    exists = [l for l in lines if l.endswith(b" EXISTS")]
    results["exists"] = exists[0].decode() if exists else "?"
    record("fetch_fast_cold", *s.command(fast)[:2])
    record("search_subject_cold", *s.command(search)[:2])
    record("append_cold", *s.command(b"APPEND INBOX (\\Seen)", APPEND_MESSAGE)[:2])
    results["rss_cold_kb"] = proc_field(s.proc.pid, "VmRSS")
    results["hwm_cold_kb"] = proc_field(s.proc.pid, "VmHWM")
    record("logout_cold", s.logout(), 0.0)

    age(run)
    print("session 2 (index not yet settled: one more scan)", flush=True)
    s = Session(mdimapd, run, log)
    record("select_rescan", *s.command(b"SELECT INBOX")[:2])
    record("fetch_fast_rescan", *s.command(fast)[:2])
    results["hwm_rescan_kb"] = proc_field(s.proc.pid, "VmHWM")
    record("logout_rescan", s.logout(), 0.0)

    for rep in range(args.reps):
        print("session %d (warm index)" % (3 + rep), flush=True)
        s = Session(mdimapd, run, log)
        results.setdefault("rss_after_select_kb", []).append(0)
        record("select_again", *s.command(b"SELECT INBOX")[:2])
        results["rss_after_select_kb"][-1] = proc_field(s.proc.pid, "VmRSS")
        record("fetch_fast_again", *s.command(fast)[:2])
        results.setdefault("rss_kb", []).append(proc_field(s.proc.pid, "VmRSS"))
        w, c, lines = s.command(search)
        record("search_subject_again", w, c)
        hits = [l for l in lines if l.startswith(b"* SEARCH")]
        results["search_hits"] = len(hits[0].split()) - 2 if hits else 0
        results.setdefault("rss_after_search_kb", []).append(proc_field(s.proc.pid, "VmRSS"))
        results.setdefault("hwm_kb", []).append(proc_field(s.proc.pid, "VmHWM"))
        s.logout()

    print("last session: APPEND on the warm index", flush=True)
    s = Session(mdimapd, run, log)
    record("select_last", *s.command(b"SELECT INBOX")[:2])
    record("append_warm", *s.command(b"APPEND INBOX (\\Seen)", APPEND_MESSAGE)[:2])
    results["hwm_append_kb"] = proc_field(s.proc.pid, "VmHWM")
    s.logout()

    index = os.path.join(run, "mdimapindex")
    results["index_bytes"] = os.path.getsize(index) if os.path.exists(index) else 0
    results["uiddb_bytes"] = os.path.getsize(os.path.join(run, "courierimapuiddb"))
    med = lambda k: statistics.median(w for w, _ in results["steps"][k])
    medc = lambda k: statistics.median(c for _, c in results["steps"][k])
    print()
    print("## %d messages (%s)" % (count, results["exists"]))
    print()
    print("| step | wall (s) | session CPU (s) |")
    print("|---|---|---|")
    for key in results["steps"]:
        print("| %s | %.3f | %.2f |" % (key, med(key), medc(key)))
    print()
    mib = lambda kb: kb / 1024
    print("Session RSS with INBOX selected, warm index: %.1f MiB after SELECT, %.1f MiB after "
          "the FETCH of fast items, %.1f MiB after SEARCH SUBJECT; peak (VmHWM) %.1f MiB. "
          "Cold session: RSS %.1f MiB, peak %.1f MiB; the session that scans once more: peak "
          "%.1f MiB; the session with an APPEND: peak %.1f MiB. Index %.1f MB, UID database "
          "%.1f MB. SEARCH SUBJECT %s: %d hits."
          % (mib(max(results["rss_after_select_kb"])), mib(max(results["rss_kb"])),
             mib(max(results["rss_after_search_kb"])), mib(max(results["hwm_kb"])),
             mib(results["rss_cold_kb"]), mib(results["hwm_cold_kb"]),
             mib(results["hwm_rescan_kb"]), mib(results["hwm_append_kb"]),
             results["index_bytes"] / 1e6, results["uiddb_bytes"] / 1e6,
             SUBJECT_WORD.decode(), results["search_hits"]))
    out = args.out or os.path.join(HERE, "results-million-%d.json" % count)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print("(saved to %s)" % out)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
