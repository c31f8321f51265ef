#!/usr/bin/env python3
"""Time single commands on one PREAUTH mdimapd session: wall time and the session's
own CPU time (from /proc/<pid>/stat, steadier than wall time on a busy machine).

For profiling one step, not for comparing servers (benches/run.py does that, over TCP
with LOGIN). A step starting with `!` is a shell command run between steps, with PID
replaced by the session's pid (to attach perf or strace); every other step is an IMAP
command without its tag.

    cargo build --release
    cp -al /tmp/mdimap-bench/src-100000-seed1-f200/Maildir /tmp/prof/Maildir
    python3 benches/steps.py /tmp/prof/Maildir 'SELECT INBOX' \\
        'FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)' 'UID SEARCH TEXT zanzibar'
    python3 benches/steps.py /tmp/prof/Maildir 'SELECT INBOX' \\
        '!perf record -g -o /tmp/perf.data -p PID & sleep 0.5' 'FETCH 1:* BODYSTRUCTURE' \\
        "!pkill -INT -f 'perf record'; sleep 1"
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MDIMAPD = os.environ.get("MDIMAPD") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target")), "release", "mdimapd")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    maildir, steps = sys.argv[1], sys.argv[2:]
    p = subprocess.Popen([MDIMAPD, "--preauth", "--maildir", maildir, "--log-stderr"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    print("session pid %d" % p.pid, flush=True)
    p.stdout.readline()
    n = 0
    for step in steps:
        if step.startswith("!"):
            os.system(step[1:].replace("PID", str(p.pid)))
            continue
        n += 1
        tag = b"t%d" % n
        wall, cpu = time.perf_counter(), cpu_seconds(p.pid)
        p.stdin.write(tag + b" " + step.encode() + b"\r\n")
        p.stdin.flush()
        untagged = 0
        while True:
            line = p.stdout.readline()
            if not line:
                sys.exit("the session ended")
            if line.startswith(tag + b" "):
                break
            untagged += 1
        print("%-50s %9.1f ms wall %7.0f ms CPU %7d untagged  %s" % (
            step[:50], (time.perf_counter() - wall) * 1000,
            (cpu_seconds(p.pid) - cpu) * 1000, untagged, line[len(tag) + 1:].strip()[:30].decode(
                "utf-8", "replace")), flush=True)
    p.stdin.write(b"z LOGOUT\r\n")
    p.stdin.flush()
    p.wait()


if __name__ == "__main__":
    main()
