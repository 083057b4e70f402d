#!/usr/bin/env bash
# Builds dist/missive, one executable that runs every subcommand with no runtime
# installed. Tries `deno compile` first (it needs to download Deno's runtime, which
# fails offline) and falls back to `bun build --compile`, which works offline. Bun
# builds with --bytecode and --splitting (start-up: parsed at build time, and each
# command's modules in their own chunk, loaded when the command runs; see BENCHMARKS).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
bin=node_modules/.bin
if timeout 120 "$bin/deno" compile --allow-all --quiet --output dist/missive cmd/main.ts 2>/dev/null; then
  echo "compile: dist/missive built with deno compile"
elif "$bin/bun" build --compile --splitting --minify --bytecode --format=esm cmd/main.ts --outfile dist/missive >/dev/null; then
  echo "compile: dist/missive built with bun build --compile (deno compile unavailable here)"
else
  echo "compile: both deno compile and bun build --compile failed" >&2
  exit 1
fi
ls -l dist/missive
