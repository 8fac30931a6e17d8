#!/usr/bin/env bash
# The main job, end to end, on the embedded default (SQLite + files, nothing
# else to install):
#
#   1. start a Convoy registry on 127.0.0.1 with a fresh data directory;
#   2. create a token for it;
#   3. `cargo convoy publish` the bundled example workspace (examples/tour:
#      plain path dependencies, a dev-dependency cycle) into it;
#   4. build and run a brand-new project that depends on what was published;
#   5. publish again, to show that a rerun skips what is already there.
#
# Everything happens in a temporary directory with its own CARGO_HOME, so
# your cargo configuration is neither read nor changed, and everything is
# stopped and removed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Building cargo-convoy"
cargo build --quiet --manifest-path "$root/Cargo.toml" -p convoy-cli
bin="$root/target/debug/cargo-convoy"
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then bin="$CARGO_TARGET_DIR/debug/cargo-convoy"; fi

step "Starting the registry (cargo convoy serve)"
"$bin" serve --data "$work/registry" --addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$work/serve.out" 2>/dev/null; then break; fi
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/serve.out")
if [[ -z "$url" ]]; then cat "$work/serve.log" >&2; echo "error: the registry did not start" >&2; exit 1; fi
echo "registry at $url (index: sparse+$url/index/)"

step "Creating a token (cargo convoy token create)"
token=$("$bin" token create --data "$work/registry" --user demo)
echo "token created for user \`demo\` (not shown)"

export CARGO_HOME="$work/cargo-home"
export CARGO_REGISTRIES_DEMO_INDEX="sparse+$url/index/"
export CARGO_REGISTRIES_DEMO_TOKEN="$token"
export CARGO_TARGET_DIR="$work/target"
mkdir -p "$CARGO_HOME"

step "Publishing examples/tour (cargo convoy publish --registry demo)"
cp -r "$root/examples/tour" "$work/tour"
rm -rf "$work/tour/target"
(cd "$work/tour" && "$bin" convoy publish --registry demo --allow-dirty)

step "Building a consumer against the registry"
mkdir -p "$work/consumer/src"
cat >"$work/consumer/Cargo.toml" <<'TOML'
[package]
name = "tour-consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tour = { version = "0.1", registry = "demo" }
tour-render = { version = "0.1", registry = "demo" }
TOML
cat >"$work/consumer/src/main.rs" <<'RUST'
fn main() {
    println!("{}", tour_render::render(&tour::stops()));
}
RUST
(cd "$work/consumer" && cargo run --quiet)

step "Publishing again: everything is already there"
(cd "$work/tour" && "$bin" convoy publish --registry demo --allow-dirty --verify none)

step "Done"
