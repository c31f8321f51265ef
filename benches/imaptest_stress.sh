#!/bin/sh
# imaptest's stress mode against mdimap or Dovecot on the same kind of setup, for
# RELIABILITY.md ("imaptest stress"): a fresh maildir for user demo/demo, the box
# INBOX.stress (mdimap) or stress (Dovecot) created first, N clients for S seconds with
# imaptest's state tracking (its default), the same seed for both servers.
#
#   benches/imaptest_stress.sh mdimap|dovecot OUTDIR [CLIENTS [SECS [SEED]]]
#
# IMAPTEST_ARGS adds imaptest settings, e.g. IMAPTEST_ARGS=qresync to have every client
# ENABLE QRESYNC, resync with SELECT (QRESYNC ...) and check MODSEQ and VANISHED too.
#
# mdimap: target/release/mdimap demo (CARGO_TARGET_DIR honoured). Dovecot: the tree
# benches/setup_dovecot.sh unpacks (DOVECOT_ROOT to point elsewhere), run as in
# benches/run.py. Run as root (Dovecot's master); the mail user is nobody.
set -eu
server=$1 out=$2 clients=${3:-50} secs=${4:-600} seed=${5:-1234}
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
imaptest=${IMAPTEST:-$here/../../shared/tools/imaptest/imaptest}
[ -x "$imaptest" ] || imaptest=/work/shared/tools/imaptest/imaptest
dovecot_root=${DOVECOT_ROOT:-$here/.tools/dovecot}
rm -rf "$out"; mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# 300 messages of varied size and structure for imaptest to APPEND.
python3 - "$out/stress.mbox" <<'PY'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write("From sender%d@example.org Mon Jan  1 00:00:00 2024\n" % i)
        f.write("From: Sender %d <sender%d@example.org>\nTo: demo@example.net\n" % (i, i))
        f.write("Subject: stress message %d\nDate: Mon, 1 Jan 2024 00:00:%02d +0000\n" % (i, i % 60))
        f.write("Message-ID: <stress%d@example.org>\n" % i)
        if i % 5 == 0:
            f.write('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % i)
            f.write("--b%d\nContent-Type: text/plain\n\nfirst part %d\n" % (i, i))
            f.write("--b%d\nContent-Type: text/plain\n\nsecond part\n--b%d--\n\n" % (i, i))
        else:
            f.write("\n" + ("line %d of message %d\n" * 1) * 0)
            for j in range(r.randint(1, 200)):
                f.write("line %d of message %d\n" % (j, i))
            f.write("\n")
PY
case $server in
mdimap)
    # As benches/run.py starts it: mdimap-listen with defaults, except the user file and
    # the session limits (50 clients from one address).
    mkdir -p "$out/home/Maildir/cur" "$out/home/Maildir/new" "$out/home/Maildir/tmp"
    chown -R nobody:nogroup "$out/home"
    hash=$(python3 -c 'import crypt; print(crypt.crypt("demo", "$6$stresssalt"))' 2>/dev/null \
        || openssl passwd -6 -salt stresssalt demo)
    printf 'demo:%s:65534:65534:%s:%s\n' "$hash" "$out/home" "$out/home/Maildir" > "$out/users"
    chmod 600 "$out/users"
    printf 'MDIMAP_USERFILE=%s\nMAXDAEMONS=200\nMAXPERIP=200\n' "$out/users" > "$out/mdimapd.conf"
    "$target/release/mdimap-listen" --config "$out/mdimapd.conf" --listen "127.0.0.1:$port" \
        --log-stderr > "$out/server.log" 2>&1 &
    pid=$!
    box=INBOX.stress
    ;;
dovecot)
    lib=$dovecot_root/usr/lib/dovecot
    mkdir -p "$out/run" "$out/state" "$out/home/Maildir"
    chown -R nobody:nogroup "$out/home"
    hash=$(python3 -c 'import crypt; print(crypt.crypt("demo", "$6$stresssalt"))' 2>/dev/null \
        || openssl passwd -6 -salt stresssalt demo)
    printf 'demo:{SHA512-CRYPT}%s:65534:65534::%s::\n' "$hash" "$out/home" > "$out/passwd"
    chown root:dovecot "$out/passwd"; chmod 640 "$out/passwd"
    cat > "$out/dovecot.conf" <<CONF
# written by benches/imaptest_stress.sh: Dovecot's defaults, except where it runs,
# how it finds the user and the unpacked binaries, and the per-user connection limit
base_dir = $out/run
state_dir = $out/state
log_path = $out/server.log
protocols = imap
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
import_environment = TZ LD_LIBRARY_PATH
passdb {
  driver = passwd-file
  args = $out/passwd
}
userdb {
  driver = passwd-file
  args = $out/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = 200
}
CONF
    for s in $(ls "$lib"); do
        case $s in *.so*|*.sh) continue;; esac
        [ -x "$lib/$s" ] && [ -f "$lib/$s" ] || continue
        printf 'service %s {\n  executable = %s\n}\n' "$s" "$lib/$s" >> "$out/dovecot.conf"
    done
    LD_LIBRARY_PATH=$lib "$dovecot_root/usr/sbin/dovecot" -F -c "$out/dovecot.conf" \
        > "$out/master.log" 2>&1 &
    pid=$!
    box=stress
    ;;
*) echo "usage: $0 mdimap|dovecot OUTDIR [CLIENTS [SECS [SEED]]]" >&2; exit 2;;
esac
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
    sleep 0.2
done
python3 - "$port" "$box" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
f = s.makefile("rwb")
f.readline()
for cmd in (b"a LOGIN demo demo", b"b CREATE " + sys.argv[2].encode(), b"c LOGOUT"):
    f.write(cmd + b"\r\n"); f.flush()
    while True:
        l = f.readline()
        if not l or l[:1] != b"*":
            print(l.decode().strip()); break
PY
"$imaptest" host=127.0.0.1 port="$port" user=demo pass=demo box="$box" \
    mbox="$out/stress.mbox" clients="$clients" secs="$secs" seed="$seed" \
    ${IMAPTEST_ARGS:-} > "$out/imaptest.log" 2>&1 || echo "imaptest exited $?" >> "$out/imaptest.log"
echo "done: $out/imaptest.log"
