#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need when it is
# missing (idempotent: nothing happens when present), then runs the
# workspace's tests. `.ci/run` calls exactly this, then the fmt and clippy
# gates.
#
# - Debian's `chromium` and `chromium-driver`: the web UI's browser tests.
# - Debian's `postgresql` (15) and `s3s-fs` from crates.io: the scale-out
#   tests run a real PostgreSQL cluster and a real S3-protocol server;
#   CONVOY_REQUIRE_SCALEOUT makes a missing one a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
missing=()
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  missing+=(chromium chromium-driver)
fi
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v s3s-fs >/dev/null 2>&1; then
  # A separate tool, built once: its own target directory, never the
  # workspace's.
  env -u CARGO_TARGET_DIR -u CARGO_BUILD_BUILD_DIR \
    cargo install --locked s3s-fs --version 0.14.1 --features binary
fi
export CONVOY_REQUIRE_SCALEOUT=1
cargo test --workspace --locked
