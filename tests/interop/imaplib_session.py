#!/usr/bin/env python3
"""A realistic client session with Python's imaplib against `mdimap demo`.

Usage: imaplib_session.py HOST PORT SERVER_MAILDIR REPORT_FILE

Logs in as demo/demo and exercises what a mail client does: CAPABILITY, LIST,
SELECT, header FETCH of all messages, SEARCH, STORE, APPEND, COPY, EXPUNGE, IDLE
(sent by hand: imaplib has no idle() before Python 3.14; the message that wakes
it is delivered into SERVER_MAILDIR/new the way an MTA does) and LOGOUT.
Writes `key=value` lines to REPORT_FILE so the Rust test can check the server's
maildir on disk. Exits non-zero on the first failure.
"""

import imaplib
import os
import re
import socket
import sys
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ok(result, what):
    typ, data = result
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data


def header_value(raw, name):
    """The unfolded value of header `name` in raw header bytes."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    text = re.sub(r"\n[ \t]+", " ", text)
    for line in text.split("\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line[len(name) + 1:].strip()
    return None


def main():
    if len(sys.argv) != 5:
        fail("usage: imaplib_session.py HOST PORT SERVER_MAILDIR REPORT_FILE")
    host, port, maildir, report_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    report = {}

    M = imaplib.IMAP4(host, port, timeout=15)
    check("IMAP4REV1" in M.capabilities, "greeting capabilities %r" % (M.capabilities,))
    ok(M.login("demo", "demo"), "LOGIN")

    caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "NAMESPACE", "MOVE"):
        check(cap in caps, "CAPABILITY lacks %s: %r" % (cap, caps))

    ok(M.namespace(), "NAMESPACE")
    listed = ok(M.list('""', "*"), "LIST")
    names = []
    for item in listed:
        m = re.match(rb'\((.*?)\) (?:"(.*?)"|NIL) (.*)$', item)
        check(m is not None, "unparsable LIST line %r" % item)
        name = m.group(3).decode()
        if name.startswith('"'):
            name = name[1:-1]
        names.append(name)
    for want in ("INBOX", "INBOX.Work", "INBOX.Archive"):
        check(want in names, "LIST lacks %s: %r" % (want, names))

    data = ok(M.select("INBOX"), "SELECT INBOX")
    count = int(data[0])
    check(count == 3, "demo INBOX should hold 3 messages, SELECT said %d" % count)

    # Headers of all messages, as a client builds its message list.
    data = ok(M.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE)])"), "FETCH headers")
    subjects = []
    for item in data:
        if isinstance(item, tuple):
            check(b"RFC822.SIZE" in item[0] and b"UID" in item[0], "FETCH item lacks UID/size: %r" % (item[0],))
            subj = header_value(item[1], "Subject")
            check(subj, "message without Subject in %r" % (item[1],))
            subjects.append(subj)
    check(len(subjects) == 3, "FETCH returned %d header sets" % len(subjects))
    check(len(set(subjects)) == 3, "demo subjects should be distinct: %r" % subjects)

    # Whole message and size agreement.
    data = ok(M.fetch("1", "(RFC822.SIZE BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    size = int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1))
    check(size == len(data[0][1]), "RFC822.SIZE %d != len(BODY[]) %d" % (size, len(data[0][1])))

    all_ids = ok(M.search(None, "ALL"), "SEARCH ALL")[0].split()
    check(all_ids == [b"1", b"2", b"3"], "SEARCH ALL gave %r" % all_ids)
    ok(M.search(None, "UNSEEN"), "SEARCH UNSEEN")
    word = subjects[1].split()[0]
    found = ok(M.search(None, "SUBJECT", '"%s"' % word.replace('"', "")), "SEARCH SUBJECT")[0].split()
    check(b"2" in found, "SEARCH SUBJECT %r gave %r" % (word, found))

    # Flag message 1.
    ok(M.store("1", "+FLAGS", "(\\Flagged)"), "STORE +FLAGS")
    flags = ok(M.fetch("1", "(FLAGS)"), "FETCH FLAGS")[0]
    check(b"\\Flagged" in flags, "message 1 not flagged: %r" % flags)
    report["flagged_subject"] = subjects[0]

    # Append into a folder.
    appended = (
        b"From: Python <python@example.org>\r\n"
        b"To: demo@example.org\r\n"
        b"Subject: appended by imaplib\r\n"
        b"Date: Tue, 8 Aug 2023 12:00:00 +0000\r\n"
        b"\r\n"
        b"Appended from the interop test.\r\n"
    )
    typ, data = M.append("INBOX.Work", "(\\Seen)", imaplib.Time2Internaldate(time.time()), appended)
    check(typ == "OK" and b"APPENDUID" in data[0], "APPEND: %s %r" % (typ, data))
    report["appended_subject"] = "appended by imaplib"

    # Copy message 2 to the archive.
    typ, data = M.copy("2", "INBOX.Archive")
    check(typ == "OK", "COPY: %s %r" % (typ, data))
    report["copied_subject"] = subjects[1]
    typ, data = M.status("INBOX.Archive", "(MESSAGES)")
    check(typ == "OK", "STATUS: %r" % data)

    # Delete message 3.
    ok(M.store("3", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(M.expunge(), "EXPUNGE")
    check(data == [b"3"], "EXPUNGE reported %r" % data)
    report["deleted_subject"] = subjects[2]

    # IDLE by hand, woken by a delivery into new/.
    tag = b"IDLE1"
    M.send(tag + b" IDLE\r\n")
    line = M.readline()
    check(line.startswith(b"+"), "IDLE continuation: %r" % line)
    time.sleep(0.3)
    name = "%d.M%dP%d.interop" % (int(time.time()), int(time.time() * 1e6) % 1000000, os.getpid())
    body = b"From: mta@example.org\nSubject: delivered during idle\n\nwake up\n"
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(body)
    os.rename(tmp, os.path.join(maildir, "new", name + ",S=%d" % len(body)))
    M.sock.settimeout(5)
    got = []
    while True:
        try:
            line = M.readline()
        except socket.timeout:
            fail("no EXISTS within 5 s of a delivery during IDLE; got %r" % got)
        check(line, "connection closed during IDLE")
        got.append(line)
        if re.match(rb"\* 3 EXISTS", line):
            break
    M.send(b"DONE\r\n")
    while True:
        line = M.readline()
        check(line, "connection closed after DONE")
        if line.startswith(tag + b" "):
            check(line.startswith(tag + b" OK"), "IDLE ended with %r" % line)
            break
    M.sock.settimeout(15)
    report["idle_subject"] = "delivered during idle"

    ok(M.noop(), "NOOP")
    data = ok(M.status("INBOX", "(MESSAGES UNSEEN)"), "STATUS INBOX")
    check(b"MESSAGES 3" in data[0], "STATUS INBOX: %r" % data)
    ok(M.close(), "CLOSE")
    typ, data = M.logout()
    check(typ == "BYE", "LOGOUT: %s %r" % (typ, data))

    with open(report_path, "w") as f:
        for k, v in report.items():
            f.write("%s=%s\n" % (k, v))
    print("imaplib session OK: %r" % report)


if __name__ == "__main__":
    try:
        main()
    except (imaplib.IMAP4.error, OSError) as e:
        fail("%s: %s" % (type(e).__name__, e))
