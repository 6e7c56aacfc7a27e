#!/usr/bin/env bash
# Builds the release `evl` binary and prints its path. A CLI that runs once per append pays its
# start-up every time, so on Linux the binary is built for start-up (docs/PERFORMANCE.md,
# "Start-up"):
#   - linked statically against musl (the Rust target is added with rustup when missing), with
#     dlmalloc as its allocator (Cargo.toml). glibc's start-up queries the CPU dozens of times;
#     on a virtual machine each query traps to the hypervisor, and a static glibc program spends
#     ~0.3 ms there before `main`. If the musl target cannot be added (no rustup, offline), or
#     there is no C compiler for it (the `ring` crate builds C: Debian's `musl-tools` provides
#     `x86_64-linux-musl-gcc`; .ci/run installs it), the binary is linked statically against
#     glibc instead, as before, and this script says so.
#   - position-dependent: nothing to relocate at start. The price is that the executable's own
#     address is not randomised (there are no shared libraries; heap and stack still are).
#   - with the functions a single append runs laid out together (scripts/evl.symbol-order, made
#     by scripts/symbol-order.sh), so starting touches a few dozen pages of code instead of
#     most of the binary. A stale order file (other dependency versions) only costs that gain;
#     this script warns when most of its symbols are missing.
#   - on x86-64, for x86-64-v3 (AVX2) when the build machine has it (see below): no crate asks
#     the CPU for its features at run time.
# Elsewhere it is an ordinary release build.
# Usage: bash scripts/build-release.sh [cargo build options]
#        EVL_NO_ORDER=1 bash scripts/build-release.sh      (no symbol ordering: to make a new one)
#        EVL_PORTABLE=1 bash scripts/build-release.sh      (for any x86-64 CPU, not x86-64-v3)
#        EVL_ORDER_STRICT=1 bash scripts/build-release.sh  (fail when the order file is stale,
#            e.g. before committing a regenerated one; CI only warns: the names belong to one
#            rustc and one Cargo.lock, and a stale order never makes a wrong binary)
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
order="$PWD/scripts/evl.symbol-order"

case "$host" in
x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu)
    target="${host%-gnu}-musl"
    if ! [ -d "$(rustc --print target-libdir --target "$target" 2>/dev/null)" ]; then
        if ! rustup target add "$target" >&2; then
            echo "build-release: cannot add the $target target; building against glibc" >&2
            target="$host"
        fi
    fi
    # A C compiler for the musl target: cc-rs looks for `<arch>-linux-musl-gcc`; `musl-gcc`
    # (musl's own wrapper) serves too. CC_<target> or TARGET_CC, when set, is the user's choice.
    cc_var="CC_${target//-/_}"
    if [ "$target" != "$host" ] && [ -z "${!cc_var:-}" ] && [ -z "${TARGET_CC:-}" ] &&
        ! command -v "${target%%-*}-linux-musl-gcc" >/dev/null; then
        if command -v musl-gcc >/dev/null; then
            export "$cc_var=musl-gcc"
        else
            echo "build-release: no C compiler for $target (${target%%-*}-linux-musl-gcc or musl-gcc;" \
                "on Debian: apt-get install musl-tools); building against glibc" >&2
            target="$host"
        fi
    fi
    flags="-C relocation-model=static"
    # x86-64-v3 (AVX2, 2013 on) when the build machine has it, so the crates that pick their
    # SIMD code at run time (curve25519-dalek, BLAKE3, memchr, …) find it enabled at compile
    # time and never ask the CPU: each CPUID traps to the hypervisor on a virtual machine
    # (~10–50 µs each, ~185 µs of every `evl add` on the machine of docs/PERFORMANCE.md).
    # EVL_PORTABLE=1 builds for any x86-64 CPU instead.
    if [ "${host%%-*}" = x86_64 ] && [ -z "${EVL_PORTABLE:-}" ]; then
        native="$(rustc --print cfg -C target-cpu=native | grep '^target_feature=' | sort)"
        v3="$(rustc --print cfg -C target-cpu=x86-64-v3 | grep '^target_feature=' | sort)"
        if [ -z "$(comm -13 <(echo "$native") <(echo "$v3"))" ]; then
            flags="$flags -C target-cpu=x86-64-v3"
        else
            echo "build-release: this CPU lacks x86-64-v3 (AVX2); building for any x86-64" >&2
        fi
    fi
    if [ "$target" = "$host" ]; then
        # --target keeps these flags off build scripts and proc-macros, which cannot be
        # linked statically.
        flags="$flags -C target-feature=+crt-static"
    fi
    # rustc's own lld (the order file is an lld option); the gcc-ld directory holds the
    # `ld.lld` that `cc -fuse-ld=lld` finds.
    gcc_ld="$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld"
    ordered=""
    # The order file names the musl build's symbols.
    if [ -z "${EVL_NO_ORDER:-}" ] && [ "$target" != "$host" ] && [ -f "$order" ] &&
        [ -x "$gcc_ld/ld.lld" ]; then
        # Cargo relinks when the flags change, not when a file they name does: the order is
        # passed under a name made of its content's hash, so a regenerated order relinks.
        sum="$(cksum <"$order" | cut -d' ' -f1)"
        mkdir -p target
        cp "$order" "target/evl.symbol-order.$sum"
        flags="$flags -C link-arg=-fuse-ld=lld -C link-arg=-B$gcc_ld"
        flags="$flags -C link-arg=-Wl,--symbol-ordering-file=$PWD/target/evl.symbol-order.$sum"
        flags="$flags -C link-arg=-Wl,--no-warn-symbol-ordering"
        ordered=1
    fi
    RUSTFLAGS="${RUSTFLAGS:-} $flags" \
        cargo build --release --quiet --bin evl --target "$target" "$@"
    bin="target/$target/release/evl"
    if [ -n "$ordered" ] && command -v nm >/dev/null; then
        total=$(grep -c . "$order")
        found=$(nm "$bin" | awk '{print $NF}' | grep -cxFf "$order" || true)
        if [ $((found * 10)) -lt $((total * 8)) ]; then
            echo "build-release: only $found of the $total symbols in scripts/evl.symbol-order are in this binary;" \
                "regenerate it with scripts/symbol-order.sh" >&2
            [ -z "${EVL_ORDER_STRICT:-}" ] || exit 1
        fi
    fi
    echo "$bin"
    ;;
*)
    cargo build --release --quiet --bin evl "$@"
    echo "target/release/evl"
    ;;
esac
