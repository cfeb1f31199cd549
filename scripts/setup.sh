#!/usr/bin/env bash
# Installs what quire needs to build and run on Debian/Ubuntu, when missing;
# `setup.sh --test` adds what the tests use (fixtures, encrypted PDFs, the
# systemd unit check, bash completion loading, Chromium for the web page's
# browser tests).
set -euo pipefail
packages=(libtesseract-dev libleptonica-dev clang libclang-dev pkg-config libssl-dev tesseract-ocr-eng
          tesseract-ocr-osd poppler-utils qpdf)
if [ "${1:-}" = "--test" ]; then
  packages+=(imagemagick fonts-dejavu-core systemd bash tesseract-ocr ghostscript chromium openssl)
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The PostgreSQL tests need a server on 127.0.0.1:5432 on which the user
# postgres connects without a password, as CI has (or QUIRE_TEST_POSTGRES
# naming another). Where none answers: Debian's server, its cluster started
# with pg_ctlcluster, and trust for postgres over loopback TCP.
if [ "${1:-}" = "--test" ] && [ -z "${QUIRE_TEST_POSTGRES:-}" ]; then
  pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
  if ! pg_up; then
    if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed"; then
      echo "setup: installing postgresql for the tests" >&2
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_lsclusters -h | grep -q "^$version main" || $sudo pg_createcluster "$version" main >/dev/null
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! $sudo grep -q "quire tests" "$hba"; then
      $sudo sed -i "1i host all postgres 127.0.0.1/32 trust # quire tests\nhost all postgres ::1/128 trust # quire tests" "$hba"
    fi
    echo "setup: starting PostgreSQL $version for the tests" >&2
    $sudo pg_ctlcluster "$version" main start 2>/dev/null || $sudo pg_ctlcluster "$version" main reload
    for _ in $(seq 30); do pg_up && break; sleep 1; done
    pg_up || { echo "setup: PostgreSQL did not start; see /var/log/postgresql/" >&2; exit 1; }
  fi
fi
command -v cargo >/dev/null || { echo "setup: cargo is missing; install Rust from https://rustup.rs" >&2; exit 1; }
