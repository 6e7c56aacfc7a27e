#!/usr/bin/env bash
# Builds the release `evl` binary and prints its path. On Linux with glibc it is linked
# statically and position-dependent (glibc's static libraries come with the C toolchain Rust
# needs there): a CLI that runs once per append pays its start-up every time, and such a
# binary starts in about two-thirds of the time of a dynamically linked one, which must load
# and relocate libc, libm and libgcc_s first, and touches fewer pages than a static PIE, which
# relocates its own pointers (docs/PERFORMANCE.md). The price is that the executable's own
# address is not randomised (libraries' and the heap's are irrelevant: there are none, and
# the heap and stack still are). Elsewhere it is an ordinary release build.
# Usage: bash scripts/build-release.sh [cargo build options]
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
case "$host" in
*-linux-gnu)
    # --target makes cargo keep these flags off build scripts and proc-macros, which cannot
    # be linked statically.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
        cargo build --release --quiet --bin evl --target "$host" "$@"
    echo "target/$host/release/evl"
    ;;
*)
    cargo build --release --quiet --bin evl "$@"
    echo "target/release/evl"
    ;;
esac
