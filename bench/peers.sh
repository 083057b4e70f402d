#!/usr/bin/env bash
# missive seal/open against age and openssl cms, in one run on the same files (issue 3,
# docs/BENCHMARKS.md "Streams"):
#
#     bash bench/peers.sh                 # 1 MiB, 64 MiB, 1 GiB; best of 3 runs each
#     SIZES="1 64" REPEAT=5 bash bench/peers.sh
#
# missive runs as the compiled binary dist/missive (built by scripts/compile.sh if absent:
# bun build --compile here, so Bun's WebCrypto); MISSIVE=... picks another command, e.g.
# MISSIVE="deno run -A --quiet cmd/main.ts". Each figure is the best wall time of REPEAT
# runs (the machine is shared; wall time from date +%s%N, so process start-up counts), with
# the largest peak RSS (maximum resident set size, as /usr/bin/time -v reports it).
# Every output is compared with the input (cmp). Ratios = peer time / missive time (simple,
# and group when present), so above 1.0 means missive is faster.
#
# openssl cms reads the whole input into memory (and its S/MIME output is base64, ~1.35x):
# it runs only up to OPENSSL_MAX_MIB (default 64) MiB; larger sizes show "skipped".
# Installs age and openssl with apt-get when missing (as root; there is no sudo here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SIZES=${SIZES:-"1 64 1024"}
REPEAT=${REPEAT:-3}
OPENSSL_MAX_MIB=${OPENSSL_MAX_MIB:-64}

for tool in age openssl; do
  if ! command -v "$tool" >/dev/null; then
    echo "peers: installing $tool with apt-get" >&2
    apt-get install -y "$tool" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
  fi
done
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

if [ -z "${MISSIVE:-}" ]; then
  # Always rebuild: a stale binary would measure old code (NO_COMPILE=1 skips it).
  [ -n "${NO_COMPILE:-}" ] && [ -x dist/missive ] || bash scripts/compile.sh >&2
  MISSIVE="$root/dist/missive"
  how="compiled binary dist/missive (scripts/compile.sh: deno compile, or bun build --compile offline)"
else
  how="$MISSIVE"
fi
read -r -a M <<<"$MISSIVE"

work=${BENCH_DIR:-$(mktemp -d /tmp/missive-peers.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Keys: missive identities, an age identity, an RSA-2048 certificate for cms.
"${M[@]}" keygen --name alice@bench.example -o alice.key --card-out alice.card >/dev/null 2>&1
"${M[@]}" keygen --name bob@bench.example -o bob.key --card-out bob.card >/dev/null 2>&1
age-keygen -o age.key 2>/dev/null
age_recipient=$(grep -o 'age1[0-9a-z]*' age.key | head -1)
openssl req -x509 -newkey rsa:2048 -nodes -keyout cms.key -out cms.pem -days 2 \
  -subj "/CN=bob@bench.example" 2>/dev/null
have_group=no
if "${M[@]}" plugins 2>/dev/null | grep -qw group; then have_group=yes; fi

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

printf '%s\n' "missive: $how; age $(age --version); $(openssl version | cut -d' ' -f1-2)"
printf '%s\n' "$(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); best of $REPEAT runs"
printf '%-8s %-16s %-5s %9s %8s %8s %13s %13s\n' size tool op seconds MB/s "RSS MiB" "simple/peer" "group/peer"

declare -A T
row() { # size tool op seconds rss bytes
  local mbs
  mbs=$(awk "BEGIN{printf \"%.0f\", $6 / 1e6 / ($4 > 0 ? $4 : 0.001)}")
  T["$1 $2 $3"]=$4
  local ratios=() stp base
  for stp in simple group; do
    base="${T["$1 missive-$stp $3"]:-}"
    if [[ $2 != missive-* && -n $base ]]; then
      ratios+=("$(awk "BEGIN{printf \"%.2f\", ($4 > 0 ? $4 : 0.001) / ($base > 0 ? $base : 0.001)}")")
    else
      ratios+=("")
    fi
  done
  printf '%-8s %-16s %-5s %9.3f %8s %8.1f %13s %13s\n' "$1MiB" "$2" "$3" "$4" "$mbs" \
    "$(awk "BEGIN{print $5 / 1024}")" "${ratios[0]}" "${ratios[1]}"
}

for mib in $SIZES; do
  head -c $((mib * 1048576)) /dev/urandom >in.bin
  bytes=$((mib * 1048576))
  stps="simple"
  [ $have_group = yes ] && stps="simple group"
  for stp in $stps; do
    run "missive $stp seal" s.msv "${M[@]}" seal --stream --quiet --stp "$stp" \
      --from alice.key --to bob.card -o s.msv in.bin
    row "$mib" "missive-$stp" seal "$best" "$rss" "$bytes"
    run "missive $stp open" out.bin "${M[@]}" open --quiet --key bob.key --trust alice.card \
      -o out.bin s.msv
    cmp -s in.bin out.bin || { echo "peers: missive $stp round trip differs" >&2; exit 1; }
    row "$mib" "missive-$stp" open "$best" "$rss" "$bytes"
  done
  run "age encrypt" a.age age -r "$age_recipient" -o a.age in.bin
  row "$mib" "age" seal "$best" "$rss" "$bytes"
  run "age decrypt" out.bin age -d -i age.key -o out.bin a.age
  cmp -s in.bin out.bin || { echo "peers: age round trip differs" >&2; exit 1; }
  row "$mib" "age" open "$best" "$rss" "$bytes"
  if [ "$mib" -le "$OPENSSL_MAX_MIB" ]; then
    run "openssl cms encrypt" c.der openssl cms -encrypt -binary -aes-256-cbc -outform DER \
      -in in.bin -out c.der cms.pem
    row "$mib" "openssl-cms" seal "$best" "$rss" "$bytes"
    run "openssl cms decrypt" out.bin openssl cms -decrypt -binary -inform DER -in c.der \
      -inkey cms.key -recip cms.pem -out out.bin
    cmp -s in.bin out.bin || { echo "peers: openssl cms round trip differs" >&2; exit 1; }
    row "$mib" "openssl-cms" open "$best" "$rss" "$bytes"
  else
    printf '%-8s %-22s %-5s %9s\n' "${mib}MiB" openssl-cms both "skipped (over OPENSSL_MAX_MIB=$OPENSSL_MAX_MIB)"
  fi
  rm -f in.bin out.bin s.msv a.age c.der
done
[ $have_group = yes ] || echo "(no group STP in this build: missive-group rows need the group branch)"
