#!/usr/bin/env bash
# Installs everything the build and the lab need on a fresh Debian bookworm machine, as root.
# Idempotent: when every package is already installed it touches nothing (and needs no network);
# otherwise it runs apt-get update once and installs what is missing. The only network it uses is
# Debian's package registry.
#
# The Rust toolchain is not installed here: the machines come with rustup's toolchain in
# ~/.cargo/bin (Debian bookworm's own cargo/rustc 1.63 is older than the workspace's
# rust-version). This script checks for it and says so clearly if it is missing.
set -euo pipefail

PACKAGES=(
    # DPDK 22.11 runtime, headers and pkg-config file (bindings/dpdk-sys links against libdpdk).
    dpdk dpdk-dev libdpdk-dev
    # bindgen needs libclang; the C shim for DPDK's static inline functions needs a C compiler.
    clang libclang-dev pkg-config
    # The namespace lab: ip/ss/nstat, ethtool -K, nft and iptables middleboxes, ping, timeout.
    iproute2 ethtool nftables iptables iputils-ping coreutils procps kmod
    # Optional captures of the lab's traffic (LAB_PCAP=1).
    tcpdump
    # The lab's peers, proxy stand-in and checkers (standard library only).
    python3
    # The side-by-side benchmark's anchor (perf/lab/side-by-side.sh): HAProxy in TCP mode with
    # its sockets made MPTCP by mptcpize (a package of its own, only recommended by mptcpd).
    haproxy mptcpd mptcpize
    # The hot-path test counts the pipeline benchmark's system calls (perf/tests/hot_path.rs).
    strace
)

if [[ $EUID -ne 0 ]]; then
    echo "setup.sh: run as root (apt-get, namespaces)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup.sh: all ${#PACKAGES[@]} Debian packages already installed"
fi

# MPTCP must be in the kernel (it is built in, not a module, on the project's machines).
if [[ ! -e /proc/sys/net/mptcp/enabled ]]; then
    modprobe mptcp 2>/dev/null || true
fi
if [[ ! -e /proc/sys/net/mptcp/enabled ]]; then
    echo "setup.sh: ERROR: this kernel has no MPTCP (no /proc/sys/net/mptcp); the lab cannot run" >&2
    exit 1
fi

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v cargo >/dev/null 2>&1; then
    echo "setup.sh: $(cargo --version), $(rustc --version 2>/dev/null || echo 'rustc not found')"
else
    echo "setup.sh: ERROR: cargo not found (PATH and ~/.cargo/bin). The Rust toolchain (>= 1.85)" \
        "must be preinstalled: it cannot be fetched from here, and Debian bookworm's cargo is too old." >&2
    exit 1
fi
echo "setup.sh: DPDK $(pkg-config --modversion libdpdk), kernel $(uname -r), ready"
