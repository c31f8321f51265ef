#!/bin/sh
# Unpack Debian's Dovecot (dovecot-core, dovecot-imapd) into benches/.tools/dovecot
# without installing it: the packages conflict with courier-imap, which the
# benchmark and the interop tests need installed. benches/run.py runs the
# unpacked `imap` binary standalone (PREAUTH) through `doveconf -e`, with
# LD_LIBRARY_PATH pointing at the unpacked usr/lib/dovecot.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tools="$here/.tools"
dest="$tools/dovecot"
mkdir -p "$tools"
cd "$tools"
rm -f dovecot-core_*.deb dovecot-imapd_*.deb
apt-get download dovecot-core dovecot-imapd
rm -rf "$dest"
mkdir -p "$dest"
for deb in dovecot-core_*.deb dovecot-imapd_*.deb; do
    dpkg -x "$deb" "$dest"
done
# The benchmark runs the servers as nobody: the tree must be readable by all.
chmod -R a+rX "$dest"
missing=$(LD_LIBRARY_PATH="$dest/usr/lib/dovecot" ldd "$dest/usr/lib/dovecot/imap" \
    "$dest/usr/bin/doveconf" | grep 'not found' || true)
if [ -n "$missing" ]; then
    echo "Dovecot needs libraries this system lacks (apt-get install them):" >&2
    echo "$missing" >&2
    exit 1
fi
LD_LIBRARY_PATH="$dest/usr/lib/dovecot" "$dest/usr/sbin/dovecot" --version
echo "Dovecot unpacked in $dest"
