#!/usr/bin/env bash
# missive against age and openssl cms, in one run on the same files (issues 3 and 12,
# docs/BENCHMARKS.md "Streams" and "Start-up"):
#
#     bash bench/peers.sh                       # start-up rows, then 1K 1 64 256 1024 MiB
#     SIZES="1 64" REPEAT=5 bash bench/peers.sh  # sizes in MiB, or NK for KiB
#
# Rows: the start-up of the compiled binary against the floor and age (bun
# bench/startup.ts), then for each size: missive as the compiled binary dist/missive (built
# by scripts/compile.sh unless NO_COMPILE=1) and under `deno run -A cmd/main.ts`, with
# --stp simple and --stp group (to one card: chunks signed); age; openssl cms up to
# OPENSSL_MAX_MIB (default 64: it holds the whole input in memory). Each figure is the best
# wall time of REPEAT runs (process start-up included) with the largest peak RSS
# (/usr/bin/time). Every output is compared with the input (cmp). The last column is
# age's time / this row's time: above 1.0, faster than age.
# Installs age and openssl with apt-get when missing (as root; there is no sudo here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SIZES=${SIZES:-"1K 1 64 256 1024"}
REPEAT=${REPEAT:-3}
OPENSSL_MAX_MIB=${OPENSSL_MAX_MIB:-64}

for tool in age openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "peers: installing $tool with apt-get" >&2
    apt-get install -y "$tool" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
  fi
done
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

# Always rebuild: a stale binary would measure old code (NO_COMPILE=1 skips it).
[ -n "${NO_COMPILE:-}" ] && [ -x dist/missive ] || bash scripts/compile.sh >&2
COMPILED=("$root/dist/missive")
DENO_RUN=("$root/node_modules/.bin/deno" run --allow-all --quiet "$root/cmd/main.ts")

echo "# start-up"
NO_COMPILE=1 ROUNDS=${STARTUP_ROUNDS:-30} "$root/node_modules/.bin/bun" bench/startup.ts
echo

work=${BENCH_DIR:-$(mktemp -d /tmp/missive-peers.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Keys: missive identities, an age identity, an RSA-2048 certificate for cms.
"${COMPILED[@]}" keygen --name alice@bench.example -o alice.key --card-out alice.card >/dev/null 2>&1
"${COMPILED[@]}" keygen --name bob@bench.example -o bob.key --card-out bob.card >/dev/null 2>&1
age-keygen -o age.key 2>/dev/null
age_recipient=$(grep -o 'age1[0-9a-z]*' age.key | head -1)
openssl req -x509 -newkey rsa:2048 -nodes -keyout cms.key -out cms.pem -days 2 \
  -subj "/CN=bob@bench.example" 2>/dev/null

# run NAME OUTPUT CMD...: best wall time and max RSS of REPEAT runs → $best $rss
run() {
  local name=$1 out=$2
  shift 2
  best="" rss=0
  for _ in $(seq "$REPEAT"); do
    rm -f "$out"
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o time.txt "$@" >/dev/null 2>err.txt || {
      echo "peers: $name failed: $(tail -1 err.txt)" >&2
      exit 1
    }
    end=$(date +%s%N)
    t=$(awk "BEGIN{printf \"%.3f\", ($end - $start) / 1e9}")
    read -r m <time.txt
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
}

echo "# streams"
printf '%s\n' "missive: compiled = dist/missive (bun build --compile), deno = deno run -A cmd/main.ts; age $(age --version); $(openssl version | cut -d' ' -f1-2)"
printf '%s\n' "$(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M) UTC; best of $REPEAT runs"

declare -A T R
record() { T["$1|$2|$3"]=$best; R["$1|$2|$3"]=$rss; }

kib_of() { case $1 in *K) echo "${1%K}" ;; *) echo $(($1 * 1024)) ;; esac; }

for size in $SIZES; do
  kib=$(kib_of "$size")
  head -c $((kib * 1024)) /dev/urandom >in.bin
  for how in compiled deno; do
    if [ $how = compiled ]; then M=("${COMPILED[@]}"); else M=("${DENO_RUN[@]}"); fi
    for stp in simple group; do
      run "missive $how $stp seal" s.msv "${M[@]}" seal --stream --quiet --stp "$stp" \
        --from alice.key --to bob.card -o s.msv in.bin
      record "$size" "missive $how $stp" seal
      run "missive $how $stp open" out.bin "${M[@]}" open --quiet --key bob.key \
        --trust alice.card -o out.bin s.msv
      cmp -s in.bin out.bin || { echo "peers: missive $how $stp round trip differs" >&2; exit 1; }
      record "$size" "missive $how $stp" open
    done
  done
  run "age encrypt" a.age age -r "$age_recipient" -o a.age in.bin
  record "$size" age seal
  run "age decrypt" out.bin age -d -i age.key -o out.bin a.age
  cmp -s in.bin out.bin || { echo "peers: age round trip differs" >&2; exit 1; }
  record "$size" age open
  if [ "$kib" -le $((OPENSSL_MAX_MIB * 1024)) ]; then
    run "openssl cms encrypt" c.der openssl cms -encrypt -binary -aes-256-cbc -outform DER \
      -in in.bin -out c.der cms.pem
    record "$size" "openssl cms" seal
    run "openssl cms decrypt" out.bin openssl cms -decrypt -binary -inform DER -in c.der \
      -inkey cms.key -recip cms.pem -out out.bin
    cmp -s in.bin out.bin || { echo "peers: openssl cms round trip differs" >&2; exit 1; }
    record "$size" "openssl cms" open
  fi
  rm -f in.bin out.bin s.msv a.age c.der
done

echo
echo "| size | tool | op | seconds | MB/s | peak RSS MiB | age / this |"
echo "| ---- | ---- | -- | ------: | ---: | -----------: | ---------: |"
for size in $SIZES; do
  kib=$(kib_of "$size")
  for tool in "missive compiled simple" "missive compiled group" "missive deno simple" \
    "missive deno group" age "openssl cms"; do
    for op in seal open; do
      t=${T["$size|$tool|$op"]:-}
      [ -n "$t" ] || continue
      age_t=${T["$size|age|$op"]}
      label=$([[ $size == *K ]] && echo "${size%K} KiB" || echo "$size MiB")
      awk -v s="$label" -v tool="$tool" -v op="$op" -v t="$t" -v kib="$kib" \
        -v rss="${R["$size|$tool|$op"]}" -v a="$age_t" 'BEGIN {
          t0 = (t > 0 ? t : 0.001)
          printf "| %s | %s | %s | %.3f | %.0f | %.1f | %.2f |\n", s, tool, op, t,
            kib * 1024 / 1e6 / t0, rss / 1024, a / t0 }'
    done
  done
done
