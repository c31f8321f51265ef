#!/bin/bash
# The CI fuzz step: builds every cargo-fuzz target and runs each for
# FUZZ_SECONDS (30 by default) from its committed seed corpus. A crash, a
# failed assertion, a run over the memory limit (-rss_limit_mb, and
# -malloc_limit_mb for one allocation) or an input taking over -timeout
# seconds makes libFuzzer exit non-zero, and so this script. The stable
# toolchain ships the sanitizer runtime; RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# use its nightly flags (-Zsanitizer=address) on it.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-30}
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Its own target directory: the fuzz build uses other flags than the main
# one, so sharing would rebuild both each time.
target_dir=${CARGO_TARGET_DIR:-$PWD/../target}/fuzz
cargo fuzz build --target-dir "$target_dir"

status=0
for target in $(cargo fuzz list); do
    echo "fuzz: $target for ${seconds}s"
    # A scratch corpus: what the run finds is not written into the committed seeds.
    scratch=$(mktemp -d)
    if ! cargo fuzz run --target-dir "$target_dir" "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 2>&1 | grep -v "^#[0-9]" | tail -n 80; then
        echo "fuzz: $target FAILED (the input is under fuzz/artifacts/$target/)" >&2
        status=1
    fi
    rm -rf "$scratch"
done
exit "$status"
