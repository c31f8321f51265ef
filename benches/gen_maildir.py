#!/usr/bin/env python3
"""Generate a realistic, deterministic Maildir++ store for the IMAP benchmark.

The store looks like a long-lived mailbox delivered by an MTA and read by a
client for years:

* INBOX holds N messages, a few folders (Sent, Drafts, Trash, Archive.2023,
  Lists.rust) hold a few percent of N each, and more small folders bring the
  count of folders besides INBOX to --folders (default 200): Archive.<year>,
  Lists.*, Projects.* (some with a third level), Clients.*, one non-ASCII
  name (modified UTF-7 on disk), a few empty; about N/5000 messages each on
  average (log-uniform, 0.1x-10x).
* Sizes: most messages 2-20 KB of text; about 2.5 % carry base64 attachments
  that bring them to 100 KB - 2 MB (log-uniform).
* Structure: text/plain (7bit, 8bit UTF-8 or quoted-printable),
  multipart/alternative (text + HTML), multipart/mixed with attachments,
  sometimes nested (mixed > alternative + attachment).
* Headers: From/To/Cc/Subject/Date/Message-ID, In-Reply-To/References for
  threads, RFC 2047 encoded words (UTF-8 B and ISO-8859-1 Q), raw 8-bit in some
  bodies, Received and List-* headers.
* Files: LF line ends, Courier-style unique names
  `<secs>.M<usec>P<pid>V<dev>I<ino>_<n>.<host>,S=<size>:2,<flags>` in cur/
  (a handful stay in new/ as fresh deliveries), mtime = the Date header (what
  servers report as INTERNALDATE).  Flags: ~85 % \\Seen, ~6 % \\Flagged,
  ~10 % \\Answered, a few drafts in Drafts.

No server state (courierimapuiddb, dovecot-uidlist, indexes) is written: the
first SELECT of each server starts from nothing.

Everything derives from --seed: the same arguments give byte-identical
messages and names.  Words planted for the SEARCH steps:

* body word "zanzibar" in ~1 % of messages (SEARCH TEXT "zanzibar"),
* sender "Quentin Marlowe <quentin.marlowe@example.net>" on ~2 % of
  messages (SEARCH FROM "marlowe").
"""

import argparse
import base64
import os
import random
import sys
import time

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his "
    "from at which but have an they you were her she there been one all we their "
    "has would when if so no will more about up out can who some time what them "
    "into only could new other also than then its like do now any these two may "
    "first way over such even most after where made many before must through "
    "back years much good well should because each just those people how too "
    "meeting report budget release server kernel patch review deadline invoice "
    "schedule project customer update database network backup migration quarter "
    "agenda travel contract proposal feedback design build deploy incident "
    "rollback latency storage cluster license renewal payment shipment order "
    "question answer thanks regards please attached document draft final version"
).split()

UTF8_WORDS = ["café", "naïve", "Grüße", "façade", "résumé", "Ærø", "Ölfeld",
              "smörgåsbord", "piñata", "déjà", "Zürich", "São", "Łódź", "Straße"]

FIRST = ["Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi",
         "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil",
         "Trent", "Victor", "Walter", "Yolanda", "Zoé", "Jürgen", "Søren", "José",
         "François", "Åsa", "Chloë", "Renée"]
LAST = ["Smith", "Jones", "Nguyen", "Müller", "García", "Rossi", "Dubois",
        "Kowalski", "Andersson", "Novak", "Tanaka", "O'Brien", "Schmidt",
        "Fernández", "Lefèvre", "Hansen", "Ivanov", "Costa", "Brown", "Wilson"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com",
           "corp.example", "lists.example.org", "university.example.edu"]
LISTS = ["rust-users", "dev-announce", "ops", "security", "general"]
ATTACH = [("application/pdf", "report.pdf"), ("image/jpeg", "photo.jpg"),
          ("application/zip", "archive.zip"), ("image/png", "screenshot.png"),
          ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "numbers.xlsx"), ("application/octet-stream", "data.bin")]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
          "Nov", "Dec"]

SEARCH_WORD = "zanzibar"
MARLOWE = "Quentin Marlowe <quentin.marlowe@example.net>"
HOST = "mail.bench.example"
START_EPOCH = 1546300800  # 2019-01-01


def encoded_word(text, rng):
    """RFC 2047: UTF-8 B-encoding, or ISO-8859-1 Q-encoding when it fits."""
    if rng.random() < 0.5:
        try:
            raw = text.encode("iso-8859-1")
            q = "".join(
                chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
                else "_" if b == 32 else "=%02X" % b
                for b in raw)
            return "=?ISO-8859-1?Q?%s?=" % q
        except UnicodeEncodeError:
            pass
    return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()


def header_text(text, rng):
    """A phrase for a header: ASCII as is, anything else as an encoded word."""
    if all(ord(c) < 128 for c in text):
        return text
    return encoded_word(text, rng)


def person(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = "%s.%s" % (first.lower(), last.lower())
    local = "".join(c if c.isascii() and (c.isalnum() or c == ".") else "x"
                    for c in local)
    addr = "%s@%s" % (local, rng.choice(DOMAINS))
    name = "%s %s" % (first, last)
    if all(ord(c) < 128 for c in name):
        if "'" in name:
            return '"%s" <%s>' % (name, addr)
        return "%s <%s>" % (name, addr)
    return "%s <%s>" % (header_text(name, rng), addr)


def sentence(rng, utf8):
    n = rng.randint(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    if utf8 and rng.random() < 0.3:
        words[rng.randrange(n)] = rng.choice(UTF8_WORDS)
    s = " ".join(words)
    return s[0].upper() + s[1:] + "."


def paragraph_text(rng, target, utf8, plant_word):
    """Text of about `target` bytes, wrapped at 72 columns, LF line ends."""
    lines, line, size = [], "", 0
    while size < target:
        s = sentence(rng, utf8)
        for w in s.split(" "):
            if len(line) + len(w) + 1 > 72:
                lines.append(line)
                size += len(line) + 1
                line = w
            else:
                line = (line + " " + w) if line else w
        if rng.random() < 0.15:
            lines.append(line)
            lines.append("")
            size += len(line) + 2
            line = ""
    if line:
        lines.append(line)
    if plant_word:
        at = rng.randrange(len(lines))
        lines[at] = (lines[at] + " " + SEARCH_WORD).strip()
    return "\n".join(lines) + "\n"


def quoted_printable(text):
    out = []
    for line in text.split("\n"):
        enc, col = [], 0
        for b in line.encode():
            piece = chr(b) if (33 <= b <= 126 and b != 61) or b == 32 else "=%02X" % b
            if col + len(piece) > 75:
                enc.append("=\n")
                col = 0
            enc.append(piece)
            col += len(piece)
        out.append("".join(enc))
    return "\n".join(out)


def b64_lines(data):
    enc = base64.b64encode(data)
    return b"\n".join(enc[i:i + 76] for i in range(0, len(enc), 76)) + b"\n"


def html_of(text):
    paras = text.split("\n\n")
    body = "".join("<p>%s</p>\n" % p.replace("&", "&amp;").replace("<", "&lt;")
                   for p in paras)
    return "<html><head><meta charset=\"utf-8\"></head><body>\n%s</body></html>\n" % body


def text_part(rng, text, headers_only=False):
    """(headers, body bytes) of a text/plain part in a random transfer encoding."""
    if not all(ord(c) < 128 for c in text):
        if rng.random() < 0.5:
            return (b"Content-Type: text/plain; charset=utf-8\n"
                    b"Content-Transfer-Encoding: 8bit\n", text.encode())
        return (b"Content-Type: text/plain; charset=utf-8\n"
                b"Content-Transfer-Encoding: quoted-printable\n",
                quoted_printable(text).encode())
    return (b"Content-Type: text/plain; charset=us-ascii; format=flowed\n"
            b"Content-Transfer-Encoding: 7bit\n", text.encode())


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.boundary_n = 0
        self.msgids = []  # recent message-ids, for threads
        self.serial = 0

    def boundary(self):
        self.boundary_n += 1
        return "----=_Part_%d_%08x" % (self.boundary_n, self.rng.getrandbits(32))

    def message(self, when, folder):
        rng = self.rng
        utf8 = rng.random() < 0.15
        plant = rng.random() < 0.01
        large = rng.random() < 0.025
        # body text: log-uniform between ~1.2 and ~17 KB so totals land in 2-20 KB
        text_size = int(1200 * (14 ** rng.random()))
        text = paragraph_text(rng, text_size, utf8, plant)

        sender = MARLOWE if rng.random() < 0.02 else person(rng)
        if folder == "Sent":
            sender = "Bench User <bench.user@example.com>"
        to = ", ".join(person(rng) for _ in range(rng.choice([1, 1, 1, 2, 3])))
        subj_words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        if utf8 and rng.random() < 0.6:
            subj_words += " " + rng.choice(UTF8_WORDS)
        subject = header_text(subj_words.capitalize(), rng)
        msgid = "<%d.%x.%d@%s>" % (when, rng.getrandbits(48), self.serial,
                                   rng.choice(DOMAINS))
        self.serial += 1

        tz = rng.choice(["+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900"])
        tm = time.gmtime(when)
        date = "%s, %d %s %d %02d:%02d:%02d %s" % (
            DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year,
            tm.tm_hour, tm.tm_min, tm.tm_sec, tz)

        h = []
        h.append("Return-Path: <%s>" % sender.split("<")[-1].rstrip(">"))
        h.append("Delivered-To: bench.user@example.com")
        for hop in range(rng.randint(1, 3)):
            h.append("Received: from relay%d.%s (relay%d.%s [192.0.2.%d])\n"
                     "\tby %s (Postfix) with ESMTPS id %X\n"
                     "\tfor <bench.user@example.com>; %s" % (
                         hop, rng.choice(DOMAINS), hop, rng.choice(DOMAINS),
                         rng.randint(1, 254), HOST, rng.getrandbits(40), date))
        h.append("From: %s" % sender)
        h.append("To: %s" % to)
        if rng.random() < 0.3:
            h.append("Cc: %s" % ", ".join(person(rng) for _ in range(rng.randint(1, 4))))
        h.append("Subject: %s" % subject)
        h.append("Date: %s" % date)
        h.append("Message-ID: %s" % msgid)
        if self.msgids and rng.random() < 0.35:
            depth = rng.randint(1, min(6, len(self.msgids)))
            refs = rng.sample(self.msgids[-200:], min(depth, len(self.msgids[-200:])))
            h.append("In-Reply-To: %s" % refs[-1])
            h.append("References: %s" % "\n ".join(refs))
        if rng.random() < 0.2:
            lst = rng.choice(LISTS)
            h.append("List-Id: %s <%s.lists.example.org>" % (lst.capitalize(), lst))
            h.append("List-Unsubscribe: <mailto:%s-leave@lists.example.org>" % lst)
            h.append("Precedence: list")
        if rng.random() < 0.05:
            h.append("X-Priority: 1 (Highest)")
        h.append("X-Mailer: BenchMailer %d.%d" % (rng.randint(1, 9), rng.randint(0, 20)))
        h.append("MIME-Version: 1.0")
        self.msgids.append(msgid)
        if len(self.msgids) > 1000:
            del self.msgids[:500]

        head = ("\n".join(h) + "\n").encode()
        kind = rng.random()
        if large:
            body_headers, body = self.mixed(text, rng, big=True)
        elif kind < 0.55:
            body_headers, body = text_part(rng, text)
        elif kind < 0.85:
            body_headers, body = self.alternative(text, rng)
        else:
            body_headers, body = self.mixed(text, rng, big=False)
        return head + body_headers + b"\n" + body

    def alternative(self, text, rng):
        b = self.boundary()
        th, tb = text_part(rng, text)
        html = html_of(text).encode()
        body = (b"This is a multi-part message in MIME format.\n\n"
                b"--" + b.encode() + b"\n" + th + b"\n" + tb + b"\n"
                b"--" + b.encode() + b"\n"
                b"Content-Type: text/html; charset=utf-8\n"
                b"Content-Transfer-Encoding: 8bit\n\n" + html + b"\n"
                b"--" + b.encode() + b"--\n")
        return (b"Content-Type: multipart/alternative; boundary=\"" + b.encode() + b"\"\n",
                body)

    def mixed(self, text, rng, big):
        b = self.boundary()
        parts = []
        if rng.random() < 0.5:
            ah, ab = self.alternative(text, rng)
        else:
            ah, ab = text_part(rng, text)
        parts.append(ah + b"\n" + ab)
        n_att = rng.choice([1, 1, 1, 2, 3])
        if big:
            total = int(100_000 * (20 ** rng.random()))  # 100 KB - 2 MB
        else:
            total = rng.randint(1_000, 12_000)
        raw_total = total * 3 // 4
        for i in range(n_att):
            ctype, fname = rng.choice(ATTACH)
            data = rng.randbytes(max(64, raw_total // n_att))
            if i == 0 and rng.random() < 0.3:
                fname = "=?UTF-8?Q?R=C3=A9sum=C3=A9_%d?=.pdf" % rng.randint(1, 99)
                disp = "attachment; filename=\"%s\"" % fname
            else:
                disp = "attachment; filename=\"%d-%s\"" % (rng.randint(1, 999), fname)
            parts.append(("Content-Type: %s; name=\"%s\"\n"
                          "Content-Disposition: %s\n"
                          "Content-Transfer-Encoding: base64\n\n" % (
                              ctype, fname.split("\"")[-1], disp)).encode()
                         + b64_lines(data))
        body = b"This is a multi-part message in MIME format.\n\n"
        for p in parts:
            body += b"--" + b.encode() + b"\n" + p + b"\n"
        body += b"--" + b.encode() + b"--\n"
        return (b"Content-Type: multipart/mixed; boundary=\"" + b.encode() + b"\"\n",
                body)


def flags_for(rng, folder, index, count):
    if folder == "Drafts":
        return "DS"
    if folder == "Sent":
        return "S"
    f = []
    recent = index >= count - max(1, count // 20)  # newest 5 % mostly unread
    if rng.random() < 0.10:
        f.append("R")
    if rng.random() < 0.06:
        f.append("F")
    if rng.random() < (0.35 if recent else 0.90):
        f.append("S")
    return "".join(sorted(f))


def write_folder(gen, path, folder, count, start, end, new_count):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    if folder != "INBOX":
        open(os.path.join(path, "maildirfolder"), "w").close()
    rng = gen.rng
    span = max(1, end - start)
    total = 0
    for i in range(count):
        when = start + (span * i) // max(1, count) + rng.randint(0, 600)
        msg = gen.message(when, folder)
        usec = rng.randint(0, 999_999)
        pid = rng.randint(1000, 99_999)
        ino = rng.getrandbits(32)
        base = "%d.M%dP%dV000000000000FD01I%016X_%d.%s,S=%d" % (
            when, usec, pid, ino, i, HOST, len(msg))
        if i >= count - new_count:
            name = os.path.join(path, "new", base)
        else:
            name = os.path.join(path, "cur", base + ":2," + flags_for(rng, folder, i, count))
        with open(name, "wb") as f:
            f.write(msg)
        os.utime(name, (when, when))
        total += len(msg)
    return total


def extra_folders(count, n, rng):
    """(name, messages) of `count` small folders, Maildir++ names without the dot.

    Drawn from their own generator so that the INBOX and the fixed folders
    stay byte-identical whatever --folders is."""
    out = []
    groups = ["Lists", "Projects", "Clients"]
    for i in range(max(0, count)):
        if i < 13:
            name = "Archive.%d" % (2010 + i)
        elif i == 13:
            name = "Re&AOc-us"  # "Reçus" in modified UTF-7, as clients create it
        else:
            group = groups[i % len(groups)]
            name = "%s.%s%03d" % (group, group[0].lower(), i)
            if group == "Projects" and i % 4 == 0:
                name += ".Notes"
        messages = int(n / 5000 * (10 ** rng.uniform(-1, 1)))
        if i % 25 == 24:
            messages = 0
        out.append((name, messages))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="maildir to create (must not exist)")
    ap.add_argument("--messages", type=int, default=10_000, help="messages in INBOX")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    ap.add_argument("--folders", type=int, default=200,
                    help="folders besides INBOX (at least the 5 fixed ones)")
    ap.add_argument("--new", type=int, default=20,
                    help="INBOX messages left in new/ (fresh deliveries)")
    args = ap.parse_args()

    if os.path.exists(args.dest):
        sys.exit("%s exists; remove it or choose another path" % args.dest)
    t0 = time.time()
    gen = Generator(args.seed)
    end = START_EPOCH + 5 * 365 * 86400
    n = args.messages
    folders = [("Sent", max(1, n * 5 // 100)), ("Drafts", max(1, n // 500)),
               ("Trash", max(1, n * 2 // 100)), ("Archive.2023", max(1, n * 5 // 100)),
               ("Lists.rust", max(1, n * 3 // 100))]
    total = write_folder(gen, args.dest, "INBOX", n, START_EPOCH, end, min(args.new, n))
    for name, count in folders:
        total += write_folder(gen, os.path.join(args.dest, "." + name), name, count,
                              START_EPOCH, end, 0)
    extra = extra_folders(args.folders - len(folders), n, random.Random(args.seed + 1))
    for name, count in extra:
        total += write_folder(gen, os.path.join(args.dest, "." + name), name, count,
                              START_EPOCH, end, 0)
    folders += extra
    with open(os.path.join(args.dest, "courierimapsubscribed"), "w") as f:
        f.write("".join("INBOX.%s\n" % name for name, _ in folders))
    msgs = n + sum(c for _, c in folders)
    print("%s: %d messages (%d in INBOX), %.1f MB, %.1f s" % (
        args.dest, msgs, n, total / 1e6, time.time() - t0))


if __name__ == "__main__":
    main()
