#!/usr/bin/env python3
"""TLS and privilege separation: what the login process and the TLS relay cost.

mdimap (mdimap-listen -> mdimapd: a confined login process does the handshake and
the login, then relays the plaintext to the session) and Dovecot (imap-login per
connection, proxying TLS to imap) on hard-link copies of one maildir, each over
implicit TLS and over plain TCP, from one Python client on 127.0.0.1:

- connect (+ TLS handshake) + LOGIN + LOGOUT: median and p99 of --logins;
- memory per logged-in connection with INBOX selected: the servers' total PSS
  (every process of the server's process group, from smaps_rollup) with
  --sessions connections open, less the total with none, divided by --sessions;
- FETCH 1:* BODY.PEEK[] in one command (MB/s) and one BODY.PEEK[] per command
  (messages/s), after a warm-up pass.

Run as root (the servers change to the mail user). Needs benches/setup_dovecot.sh
done and a release build. Usage: python3 benches/tls.py [--messages 300 --size 200000]
"""

import argparse
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402  (the server starters and the client of benches/run.py)


# One client context for every connection: building one loads the system's CA
# store, which costs the client ~50 ms, more than the servers' whole handshake.
CLIENT_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE


def connect(port, tls):
    return R.Conn(port, CLIENT_TLS if tls else None)


def make_store(path, messages, size):
    """A maildir of `messages` text messages of about `size` bytes each."""
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    line = b"The quick brown fox jumps over the lazy dog, 0123456789 times.\n"
    body = line * (size // len(line))
    now = int(time.time())
    for i in range(messages):
        header = ("From: a@example.org\nTo: b@example.net\nSubject: message %d\n"
                  "Date: Mon, 7 Aug 2023 10:00:00 +0000\nMessage-ID: <%d@bench>\n\n"
                  % (i, i)).encode()
        name = "%d.M%dP1.bench,S=%d:2,S" % (now - messages + i, i, len(header) + len(body))
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(header + body)


def copy_of(source, run_dir):
    home = os.path.join(run_dir, "home")
    os.makedirs(home)
    maildir = os.path.join(home, "Maildir")
    subprocess.run(["cp", "-al", source, maildir], check=True)
    subprocess.run(["chown", "-R", "%d:%d" % (R.MAIL_UID, R.MAIL_GID), home], check=True)
    return home, maildir


def make_cert(run_dir):
    cert, key = os.path.join(run_dir, "cert.pem"), os.path.join(run_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def start_mdimap(args, run_dir, home, maildir, pwhash, cert, key):
    tls_port = R.free_port()
    server = R.start_mdimap(
        args, run_dir, home, maildir, pwhash,
        extra_conf="# benches/tls.py: the certificate for STARTTLS and implicit TLS\n"
                   "TLS_CERTFILE=%s\nTLS_PRIVATE_KEYFILE=%s\n" % (cert, key),
        extra_argv=["--listen-tls", "127.0.0.1:%d" % tls_port])
    return server, server.port, tls_port


def start_dovecot(args, run_dir, home, maildir, pwhash, cert, key):
    tls_port = R.free_port()
    extra = ("protocol imap {\n  mail_max_userip_connections = 200\n}\n"
             "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n"
             "disable_plaintext_auth = no\n"
             "service imap-login {\n  inet_listener imaps {\n    address = 127.0.0.1\n"
             "    port = %d\n  }\n}\n" % (cert, key, tls_port))
    server = R.start_dovecot_for(
        run_dir, [(R.USER, home)], pwhash, "benches/tls.py",
        "TLS on a second port with the benchmark's certificate", extra)
    return server, server.port, tls_port


def pss_total(pgid):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open("/proc/%s/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


def logins(port, tls, n):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        c = connect(port, tls)
        c.login()
        c.logout()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {"median_ms": statistics.median(samples) * 1000,
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000}


def memory(server, port, tls, n):
    pgid = server.proc.pid
    time.sleep(0.5)
    before = pss_total(pgid)
    conns = []
    for _ in range(n):
        c = connect(port, tls)
        c.login()
        c.command(b"SELECT INBOX")
        conns.append(c)
    time.sleep(0.5)
    after = pss_total(pgid)
    for c in conns:
        c.logout()
    return {"pss_kib_per_connection": (after - before) / n}


def throughput(port, tls, messages):
    c = connect(port, tls)
    c.login()
    c.command(b"SELECT INBOX")
    c.command(b"FETCH 1:* BODY.PEEK[]")  # warm-up: the page cache and the servers' caches
    got = c.received
    t = time.perf_counter()
    c.command(b"FETCH 1:* BODY.PEEK[]")
    bulk = (c.received - got) / (time.perf_counter() - t) / 1e6
    t = time.perf_counter()
    for i in range(1, messages + 1):
        c.command(b"FETCH %d BODY.PEEK[]" % i)
    each = messages / (time.perf_counter() - t)
    c.logout()
    return {"bulk_mb_s": bulk, "per_command_msgs_s": each}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--size", type=int, default=200_000, help="bytes per message")
    ap.add_argument("--logins", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--servers", default="mdimap,dovecot")
    ap.add_argument("--bin-dir", default=None)
    ap.add_argument("--workdir", default="/tmp/mdimap-bench-tls")
    ap.add_argument("--baseline", default=None, metavar="BIN_DIR",
                    help="also run the mdimap-listen and mdimapd in BIN_DIR (another "
                         "build, e.g. before a change), as 'baseline'")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the servers change to the mail user after LOGIN")
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    source = os.path.join(args.workdir, "store")
    make_store(source, args.messages, args.size)
    cert, key = make_cert(args.workdir)
    pwhash = R.password_hash()
    starters = {"mdimap": start_mdimap, "dovecot": start_dovecot}
    results = {}
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.baseline:
        names.insert(0, "baseline")
        starters["baseline"] = lambda a, *rest: start_mdimap(
            argparse.Namespace(bin_dir=args.baseline), *rest)
    for name in names:
        run_dir = os.path.join(args.workdir, name)
        os.makedirs(run_dir)
        home, maildir = copy_of(source, run_dir)
        server, port, tls_port = starters[name](args, run_dir, home, maildir, pwhash, cert, key)
        try:
            for label, p, tls in (("plain", port, False), ("TLS", tls_port, True)):
                row = {}
                row.update(logins(p, tls, args.logins))
                row.update(memory(server, p, tls, args.sessions))
                row.update(throughput(p, tls, args.messages))
                results["%s %s" % (name, label)] = row
                print("%-14s %s" % ("%s %s" % (name, label),
                                    ", ".join("%s=%.1f" % kv for kv in row.items())),
                      flush=True)
        finally:
            server.stop()
    print()
    print("| over 127.0.0.1 | login ms (median / p99) | PSS KiB per connection "
          "| FETCH 1:* BODY[] MB/s | BODY[] per command, msgs/s |")
    print("|---|---:|---:|---:|---:|")
    for k, r in results.items():
        print("| %s | %.1f / %.1f | %.0f | %.0f | %.0f |" % (
            k, r["median_ms"], r["p99_ms"], r["pss_kib_per_connection"], r["bulk_mb_s"],
            r["per_command_msgs_s"]))


if __name__ == "__main__":
    main()
