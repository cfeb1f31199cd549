#!/usr/bin/env bash
# Builds quire and runs the daemon on the default data dir (extra arguments go to `quire serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
exec target/release/quire serve "$@"
