#!/usr/bin/env bash
# Test assets that come from Debian's archive rather than from this repository:
# a real Debian bzImage (boot-protocol tests, libvirt TCG guests) and its modules.
# Idempotent: does nothing once .cache/debian-kernel/vmlinuz exists.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/debian-kernel
[ -s "$DEST/vmlinuz" ] && exit 0
mkdir -p "$DEST"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
find_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
PKG="$(find_pkg)"
if [ -z "$PKG" ]; then  # package lists never fetched on this machine
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  PKG="$(find_pkg)"
fi
if [ -z "$PKG" ]; then
  echo "fetch_assets: cannot find the Debian kernel package (run apt-get update)" >&2; exit 1
fi
chmod 777 "$TMP"  # apt's _apt user downloads into it
(cd "$TMP" && apt-get download -q "$PKG" >/dev/null)
dpkg-deb -x "$TMP"/*.deb "$TMP/root"
cp "$TMP"/root/boot/vmlinuz-* "$DEST/vmlinuz"
KVER="$(basename "$TMP"/root/lib/modules/*)"
echo "$KVER" > "$DEST/version"
# Keep only the modules a tiny test initramfs may want (ACPI power button, virtio).
mkdir -p "$DEST/modules"
find "$TMP/root/lib/modules/$KVER" \( -name 'button.ko*' -o -name 'virtio*.ko*' -o -name 'evdev.ko*' \) \
  -exec cp {} "$DEST/modules/" \;
echo "fetch_assets: $PKG -> $DEST/vmlinuz"
