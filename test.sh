#!/bin/bash
# The test command (see README): installs what the tests need when missing
# (mbsync from isync, python3, Courier-IMAP and its authdaemond, maildrop's
# deliverquota and maildirmake, libfaketime, systemd's socket activator, ucspi-tcp, fail2ban,
# openssl, Dovecot's core library for imaptest), then runs every unit and integration test and a short run of each fuzz
# target (fuzz/ci.sh). Run from anywhere; exits non-zero when either fails.
set -euo pipefail
cd "$(dirname "$0")"

missing_pkgs=()
command -v mbsync >/dev/null 2>&1 || missing_pkgs+=(isync)
command -v python3 >/dev/null 2>&1 || missing_pkgs+=(python3)
dpkg -s courier-imap >/dev/null 2>&1 || missing_pkgs+=(courier-imap)
# tests/quota.rs runs maildrop's deliverquota and maildirmake (beside Courier's own).
[[ -x /usr/sbin/deliverquota.maildrop ]] || missing_pkgs+=(maildrop)
command -v systemd-socket-activate >/dev/null 2>&1 || missing_pkgs+=(systemd)
command -v tcpserver >/dev/null 2>&1 || missing_pkgs+=(ucspi-tcp)
command -v fail2ban-regex >/dev/null 2>&1 || missing_pkgs+=(fail2ban)
command -v openssl >/dev/null 2>&1 || missing_pkgs+=(openssl)
# tests/courier_interop.rs moves Courier's clock with libfaketime (IMAP_EMPTYTRASH ageing).
dpkg -s libfaketime >/dev/null 2>&1 || missing_pkgs+=(libfaketime)
# tests/imaptest.rs runs the vendored imaptest, which links Dovecot's library (only
# dovecot-core: unlike dovecot-imapd it does not conflict with courier-imap).
[[ -e /usr/lib/dovecot/libdovecot.so.0 ]] || missing_pkgs+=(dovecot-core)
# tests/auth_backends.rs runs a private authdaemond with the userdb and pipe modules.
for pkg in courier-authdaemon courier-authlib-userdb courier-authlib-pipe; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing_pkgs+=("$pkg")
done

if ((${#missing_pkgs[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        # Only refresh the package lists when apt has none yet or cannot find a package.
        if ! apt-get install -y --no-install-recommends "${missing_pkgs[@]}"; then
            apt-get update
            apt-get install -y --no-install-recommends "${missing_pkgs[@]}"
        fi
    else
        echo "test.sh: missing programs for the interop tests; install: ${missing_pkgs[*]}" >&2
        echo "  e.g. sudo apt-get install -y ${missing_pkgs[*]}" >&2
        exit 1
    fi
fi

status=0
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --all-targets --no-fail-fast 2>&1 || status=$?
# Each cargo-fuzz target for 30 seconds (fuzz/ci.sh); a crash, a hang or a
# memory blow-up fails the run. MDIMAP_SKIP_FUZZ=1 leaves it out locally.
if [[ -z ${MDIMAP_SKIP_FUZZ:-} ]]; then
    fuzz/ci.sh 2>&1 || status=$?
fi
exit "$status"
