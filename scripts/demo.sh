#!/usr/bin/env bash
# The demo: two identities, a message sealed by alice, piped, opened by bob, sender
# verified. Uses a fresh temporary folder; prints each command before running it.
set -euo pipefail
cd "$(dirname "$0")/.."
missive() { bin/missive "$@"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Bold command lines on a terminal; plain text into a pipe or a file, or with NO_COLOR.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi

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

step "missive keygen --name carol@example.org -o carol.key > carol.card"
missive keygen --name carol@example.org -o "$dir/carol.key" > "$dir/carol.card"
step 'echo "to the team" | missive seal --stp group --hide-recipients --from alice.key --to bob.card --to carol.card > team.msv'
echo "to the team" | missive seal --stp group --hide-recipients --from "$dir/alice.key" \
  --to "$dir/bob.card" --to "$dir/carol.card" > "$dir/team.msv"
step "missive open --key carol.key --trust alice.card team.msv"
missive open --key "$dir/carol.key" --trust "$dir/alice.card" "$dir/team.msv"

step "missive listen tcp://127.0.0.1:0 --key bob.key --trust alice.card --count 1 &   # bob listens"
missive listen tcp://127.0.0.1:0 --key "$dir/bob.key" --trust "$dir/alice.card" --count 1 \
  2> "$dir/listen.err" &
listener=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's/^missive: listening on \(tcp:[^ ]*\).*/\1/p' "$dir/listen.err")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$dir/listen.err" >&2; exit 1; }
step "echo 'hi over tcp' | missive send $url --from alice.key --to bob.card"
echo "hi over tcp" | missive send "$url" --from "$dir/alice.key" --to "$dir/bob.card"
wait "$listener"
printf '\ndemo done.\n'
