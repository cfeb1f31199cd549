#!/usr/bin/env bash
# Installs what quire needs to build and run on Debian/Ubuntu, when missing;
# `setup.sh --test` adds what the tests use (fixtures, encrypted PDFs, the
# systemd unit check, bash completion loading, Chromium for the web page's
# browser tests).
set -euo pipefail
packages=(libtesseract-dev libleptonica-dev clang libclang-dev pkg-config tesseract-ocr-eng tesseract-ocr-osd
          poppler-utils qpdf)
if [ "${1:-}" = "--test" ]; then
  packages+=(imagemagick fonts-dejavu-core systemd bash tesseract-ocr ghostscript chromium)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is missing; install Rust from https://rustup.rs" >&2; exit 1; }
