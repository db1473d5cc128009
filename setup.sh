#!/usr/bin/env bash
# One entry point for the README's two commands; idempotent and quick the second time.
#   ./setup.sh run  [vmgui arguments]   install what the app needs, then start it
#   ./setup.sh test [pytest arguments]  install that plus test needs, then ruff, mypy, pytest
set -euo pipefail
cd "$(dirname "$0")"
MODE="${1:-run}"
shift || true

APP_PKGS=(
  python3 python3-venv python3-dev gcc pkg-config libvirt-dev
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils passt seabios
  libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1
  libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 libxkbcommon0
  libgl1 libegl1 libglib2.0-0 libdbus-1-3 libfontconfig1 fonts-dejavu-core
  xvfb xauth openssh-client grub-pc-bin grub-common xorriso mtools
)
TEST_PKGS=(
  xvfb gcc-multilib binutils desktop-file-utils appstream cpio xz-utils zstd
  procps iproute2 acpica-tools systemd grub-pc-bin grub-common xorriso mtools sasl2-bin
  openssh-server
)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else echo "setup.sh: need root or sudo to install Debian packages: $*" >&2; exit 1; fi
}

install_debs() {
  local missing=() p
  local installed
  installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2=="installed"{print $1}' || true)"
  for p in "$@"; do
    grep -qx "$p" <<<"$installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

PKGS=("${APP_PKGS[@]}")
EXTRAS="."
if [ "$MODE" = test ]; then PKGS+=("${TEST_PKGS[@]}"); EXTRAS=".[test]"; fi
install_debs "${PKGS[@]}"

# The virtual environment, rebuilt only when pyproject.toml or the mode changes.
PY="${PYTHON:-python3}"
STAMP=".venv/.vmgui-stamp"
WANT="$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # compat mode: a plain .pth path entry, no import hook on every start (vmgui-vmm start-up);
  # setuptools calls it transitional, so fall back to a normal editable install once it is gone.
  .venv/bin/python -m pip install -q -e "$EXTRAS" --config-settings editable_mode=compat 2>/dev/null \
    || .venv/bin/python -m pip install -q -e "$EXTRAS"
  echo "$WANT" > "$STAMP"
fi

case "$MODE" in
  run)
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      echo "setup.sh: no display (DISPLAY is unset); starting vmgui on a virtual screen (Xvfb)" >&2
      exec xvfb-run -a .venv/bin/vmgui "$@"
    fi
    exec .venv/bin/vmgui "$@"
    ;;
  test)
    bash tests/fetch_assets.sh
    .venv/bin/ruff check vmgui tests bench
    .venv/bin/mypy
    .venv/bin/lint-imports  # the layer rule (pyproject.toml [tool.importlinter])
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: ./setup.sh run|test [arguments]" >&2; exit 2 ;;
esac
