#!/usr/bin/env bash
# Makes the three base images deploy/Dockerfile starts from, locally, for machines that
# reach Debian's mirror but no image registry: debootstrap a Debian 12 root, then
#   debian:bookworm-slim   that root (with this machine's CA certificates),
#   node:20-bookworm-slim  plus this machine's Node.js 20 and npm,
#   rust:1.95-bookworm     plus gcc and this machine's Rust toolchain (rustup, wasm32-wasip2),
# each imported with `podman import` under the name the Dockerfile uses. Images already
# present are kept (KD_REBUILD_BASE=1 makes them again).
#
#   sudo deploy/base-images.sh
set -euo pipefail

WORK=${KD_IMAGE_WORK:-/var/tmp/kd-image}
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
DEBIAN=docker.io/library/debian:bookworm-slim
NODE=docker.io/library/node:20-bookworm-slim
RUST=docker.io/library/rust:1.95-bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

step() { printf '== %s\n' "$*"; }
fail() { printf 'base-images: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap and podman import need it)"
for tool in debootstrap podman tar; do
    command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install -y debootstrap podman runc"
done

have() { [ -z "${KD_REBUILD_BASE:-}" ] && "${PODMAN[@]}" image exists "$1"; }

# import ROOT NAME [--change ...]: the folder ROOT becomes the image NAME.
import() {
    local root=$1 name=$2; shift 2
    tar -C "$root" --numeric-owner -c . | "${PODMAN[@]}" import "$@" - "$name" >/dev/null
    step "$name: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$name" | numfmt --to=iec) imported"
}

# A fresh copy of the Debian root under $WORK/NAME.
copy_root() {
    rm -rf "${WORK:?}/$1" && cp -a "$WORK/debian" "$WORK/$1"
}

in_root() { chroot "$1" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "${@:2}"; }

mkdir -p "$WORK"
if [ ! -x "$WORK/debian/bin/bash" ] || [ -n "${KD_REBUILD_BASE:-}" ]; then
    step "debootstrap Debian 12 (bookworm, minbase) into $WORK/debian from $MIRROR"
    rm -rf "$WORK/debian"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/debian" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || fail "debootstrap failed: see $WORK/debootstrap.log"
    # This machine's extra certificate authorities (an egress proxy's), so that cargo, npm
    # and apt inside the build trust what the machine itself trusts.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/debian/usr/local/share/ca-certificates/"
        in_root "$WORK/debian" update-ca-certificates >/dev/null
    fi
    rm -rf "$WORK/debian/var/cache/apt/archives/"*.deb "$WORK/debian/var/lib/apt/lists/"*
fi

if ! have "$DEBIAN"; then
    step "making $DEBIAN"
    import "$WORK/debian" "$DEBIAN" --change 'CMD ["bash"]'
fi

if ! have "$NODE"; then
    command -v node >/dev/null && [ -d /usr/lib/node_modules/npm ] || fail "Node.js 20 and npm are needed on this machine"
    case "$(node --version)" in v20.*) ;; *) fail "Node.js 20 is needed, this machine has $(node --version)";; esac
    step "making $NODE with this machine's Node.js $(node --version)"
    copy_root node
    install -m 0755 "$(command -v node)" "$WORK/node/usr/local/bin/node"
    mkdir -p "$WORK/node/usr/local/lib/node_modules"
    cp -a /usr/lib/node_modules/npm "$WORK/node/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/node/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/node/usr/local/bin/npx"
    import "$WORK/node" "$NODE" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["node"]'
    rm -rf "${WORK:?}/node"
fi

if ! have "$RUST"; then
    rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
    [ -d "$rustup_home/toolchains/$toolchain" ] || fail "no Rust toolchain found under $rustup_home"
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
    step "making $RUST with this machine's $(rustc --version) ($toolchain, wasm32-wasip2 included)"
    copy_root rust
    step "  apt-get install gcc libc6-dev pkg-config git (inside the root)"
    cp /etc/resolv.conf "$WORK/rust/etc/resolv.conf"
    in_root "$WORK/rust" apt-get update -q >"$WORK/rust-apt.log" 2>&1 \
        && in_root "$WORK/rust" apt-get install -y -q --no-install-recommends gcc libc6-dev pkg-config git make >>"$WORK/rust-apt.log" 2>&1 \
        || fail "apt-get inside the rust root failed: see $WORK/rust-apt.log"
    rm -rf "$WORK/rust/var/cache/apt/archives/"*.deb "$WORK/rust/var/lib/apt/lists/"*
    mkdir -p "$WORK/rust/usr/local/rustup/toolchains" "$WORK/rust/usr/local/cargo/bin"
    # Like the official image: RUSTUP_HOME and CARGO_HOME under /usr/local, one toolchain.
    cp -a "$(readlink -f "$rustup_home/toolchains/$toolchain")" "$WORK/rust/usr/local/rustup/toolchains/$toolchain"
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$toolchain" >"$WORK/rust/usr/local/rustup/settings.toml"
    for bin in rustup cargo rustc rustdoc; do
        cp -a "$cargo_home/bin/$bin" "$WORK/rust/usr/local/cargo/bin/$bin"
    done
    import "$WORK/rust" "$RUST" \
        --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]'
    rm -rf "${WORK:?}/rust"
fi
step "base images ready: $DEBIAN, $NODE, $RUST"
