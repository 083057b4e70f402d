#!/usr/bin/env bash
# age files: missive seal --stp age / open --identity against the age binary, side by side
# on the same files (issue 17, docs/BENCHMARKS.md "age files"):
#
#     bash bench/age_peers.sh                  # 1 MiB and 256 MiB, best of 3 runs each
#     SIZES="1 64" REPEAT=5 bash bench/age_peers.sh
#
# missive runs twice: as the compiled binary dist/missive (scripts/compile.sh, rebuilt
# unless NO_COMPILE=1: bun build --compile here, so Bun, whose node:crypto has no
# ChaCha20-Poly1305: noble) and as `deno run` (Deno's node:crypto ChaCha20-Poly1305).
# Each figure is the best wall time of REPEAT runs (date +%s%N, process start-up
# included) with the largest peak RSS (/usr/bin/time). Every output is checked with cmp,
# and each side opens the other's files. ratio = age time / missive time (above 1.0:
# missive is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

SIZES=${SIZES:-"1 256"}
REPEAT=${REPEAT:-3}
command -v age >/dev/null || bash scripts/install-peers.sh
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null
[ -n "${NO_COMPILE:-}" ] && [ -x dist/missive ] || bash scripts/compile.sh >&2

declare -A TOOLS=(
  [compiled]="$root/dist/missive"
  [deno-run]="$root/node_modules/.bin/deno run --allow-all --quiet $root/cmd/main.ts"
)

work=${BENCH_DIR:-$(mktemp -d /tmp/missive-age-bench.XXXXXX)}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
age-keygen -o age.key 2>/dev/null
recipient=$(age-keygen -y age.key)

# run NAME CMD...: best wall time and max RSS (KiB) of REPEAT runs → $best $rss
run() {
  local name=$1
  shift
  best="" rss=0
  for _ in $(seq "$REPEAT"); do
    local start end t m
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o time.txt "$@" >/dev/null 2>err.txt || {
      echo "age_peers: $name failed: $(tail -1 err.txt)" >&2
      exit 1
    }
    end=$(date +%s%N)
    t=$(awk "BEGIN{printf \"%.3f\", ($end - $start) / 1e9}")
    read -r m <time.txt
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
}

printf '%s\n' "age $(age --version); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); best of $REPEAT runs"
printf '%-7s %-18s %-5s %8s %8s %8s %10s\n' size tool op seconds MB/s "RSS MiB" "age/this"
declare -A AGE
row() { # size tool op seconds rss bytes
  local mbs ratio=""
  mbs=$(awk "BEGIN{printf \"%.0f\", $6 / 1e6 / ($4 > 0 ? $4 : 0.001)}")
  if [ "$2" = age ]; then AGE["$1 $3"]=$4; else
    ratio=$(awk "BEGIN{printf \"%.2f\", ${AGE["$1 $3"]} / ($4 > 0 ? $4 : 0.001)}")
  fi
  printf '%-7s %-18s %-5s %8.3f %8s %8.1f %10s\n' "${1}MiB" "$2" "$3" "$4" "$mbs" \
    "$(awk "BEGIN{print $5 / 1024}")" "$ratio"
}

for mib in $SIZES; do
  head -c $((mib * 1048576)) /dev/urandom >in.bin
  bytes=$((mib * 1048576))
  run "age encrypt" age -r "$recipient" -o a.age in.bin
  row "$mib" age seal "$best" "$rss" "$bytes"
  run "age decrypt" age -d -i age.key -o out.bin a.age
  cmp -s in.bin out.bin || { echo "age_peers: age round trip differs" >&2; exit 1; }
  row "$mib" age open "$best" "$rss" "$bytes"
  for tool in compiled deno-run; do
    read -r -a M <<<"${TOOLS[$tool]}"
    run "$tool seal" "${M[@]}" seal --stp age --to "$recipient" --force -o m.age in.bin
    row "$mib" "missive-$tool" seal "$best" "$rss" "$bytes"
    run "$tool open" "${M[@]}" open --quiet --identity age.key --force -o out.bin m.age
    cmp -s in.bin out.bin || { echo "age_peers: missive $tool round trip differs" >&2; exit 1; }
    row "$mib" "missive-$tool" open "$best" "$rss" "$bytes"
    # Each side opens the other's file.
    age -d -i age.key m.age 2>/dev/null | cmp -s in.bin - || { echo "age_peers: age cannot open missive's" >&2; exit 1; }
    "${M[@]}" open --quiet --identity age.key a.age 2>/dev/null | cmp -s in.bin - ||
      { echo "age_peers: missive cannot open age's" >&2; exit 1; }
  done
  rm -f in.bin out.bin a.age m.age
done
