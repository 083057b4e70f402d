#!/usr/bin/env bash
# The demo: two identities, a message sealed by alice, piped, opened by bob, sender
# verified. Uses a fresh temporary folder; prints each command before running it.
set -euo pipefail
cd "$(dirname "$0")/.."
missive() { node_modules/.bin/deno run --allow-all --quiet cmd/main.ts "$@"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "missive keygen --name alice@example.org -o alice.key > alice.card"
missive keygen --name alice@example.org -o "$dir/alice.key" > "$dir/alice.card"
step "missive keygen --name bob@example.org -o bob.key > bob.card"
missive keygen --name bob@example.org -o "$dir/bob.key" > "$dir/bob.card"
step "missive card --json bob.card"
missive card --json "$dir/bob.card"

step 'echo "hello bob" | missive seal --stp simple --from alice.key --to bob.card | missive open --key bob.key --trust alice.card'
echo "hello bob" | missive seal --stp simple --from "$dir/alice.key" --to "$dir/bob.card" |
  missive open --key "$dir/bob.key" --trust "$dir/alice.card"

step 'echo "for bob only" | missive seal --from alice.key --to bob.card --armor | tee msg.asc'
echo "for bob only" | missive seal --from "$dir/alice.key" --to "$dir/bob.card" --armor | tee "$dir/msg.asc"
step "missive inspect msg.asc"
missive inspect "$dir/msg.asc"

step "missive open --key alice.key msg.asc   # alice is not the recipient: exit 5"
set +e
missive open --key "$dir/alice.key" "$dir/msg.asc"
echo "exit code $?"
step "missive open --key bob.key --replay-db seen.db msg.asc   # twice: the second is a replay, exit 6"
missive open --key "$dir/bob.key" --trust "$dir/alice.card" --replay-db "$dir/seen.db" "$dir/msg.asc"
missive open --key "$dir/bob.key" --trust "$dir/alice.card" --replay-db "$dir/seen.db" "$dir/msg.asc"
echo "exit code $?"
set -e
printf '\ndemo done.\n'
