#!/usr/bin/env bash
# A local 3-node NATS JetStream cluster for developing the relay's JetStream store
# (docs/SCALE.md). Loopback only; data in a temporary folder; stopped by PID.
#
#   scripts/nats-cluster.sh start [DIR]   start 3 nodes; prints the --store URL list
#   scripts/nats-cluster.sh stop  [DIR]   stop them (SIGTERM by PID) and remove DIR
#   scripts/nats-cluster.sh status [DIR]  which nodes run
#
# DIR defaults to ${TMPDIR:-/tmp}/missive-nats-cluster. Client ports are
# $NATS_BASE_PORT, +1, +2 (default 14222); cluster ports are those + 1000.
set -euo pipefail

cmd="${1:-}"
dir="${2:-${TMPDIR:-/tmp}/missive-nats-cluster}"
base="${NATS_BASE_PORT:-14222}"

case "$cmd" in
start)
  command -v nats-server >/dev/null || {
    echo "nats-cluster: nats-server not found (bash scripts/install-peers.sh installs it)" >&2
    exit 1
  }
  if [ -e "$dir/pids" ]; then
    echo "nats-cluster: $dir/pids exists: already started? (stop it first)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  urls=()
  for i in 0 1 2; do
    port=$((base + i))
    cport=$((base + 1000 + i))
    routes=()
    for j in 0 1 2; do
      [ "$j" = "$i" ] || routes+=("nats-route://127.0.0.1:$((base + 1000 + j))")
    done
    mkdir -p "$dir/n$((i + 1))"
    cat >"$dir/n$((i + 1)).conf" <<CONF
server_name: n$((i + 1))
listen: 127.0.0.1:$port
jetstream { store_dir: "$dir/n$((i + 1))" }
cluster { name: missive, listen: 127.0.0.1:$cport, routes: [$(IFS=,; echo "${routes[*]}")] }
CONF
    nats-server -c "$dir/n$((i + 1)).conf" >"$dir/n$((i + 1)).log" 2>&1 &
    echo $! >>"$dir/pids"
    urls+=("nats://127.0.0.1:$port")
  done
  for i in 1 2 3; do
    for _ in $(seq 100); do
      grep -q "Server is ready" "$dir/n$i.log" 2>/dev/null && break
      sleep 0.1
    done
    grep -q "Server is ready" "$dir/n$i.log" || {
      echo "nats-cluster: node n$i did not start; see $dir/n$i.log" >&2
      exit 1
    }
  done
  echo "nats-cluster: 3 nodes in $dir (PIDs $(tr '\n' ' ' <"$dir/pids"))" >&2
  (IFS=,; echo "${urls[*]}")
  ;;
stop)
  [ -e "$dir/pids" ] || { echo "nats-cluster: nothing started in $dir" >&2; exit 0; }
  while read -r pid; do
    # Only a nats-server this script started: the PID must still be one.
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "nats-server" ]; then
      kill -TERM "$pid"
      for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
      [ -e "/proc/$pid" ] && kill -KILL "$pid"
    fi
  done <"$dir/pids"
  rm -rf "$dir"
  echo "nats-cluster: stopped" >&2
  ;;
status)
  [ -e "$dir/pids" ] || { echo "nats-cluster: not started ($dir)"; exit 1; }
  n=0
  while read -r pid; do
    n=$((n + 1))
    if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "nats-server" ]; then
      echo "n$n: running (PID $pid)"
    else echo "n$n: stopped"; fi
  done <"$dir/pids"
  ;;
*)
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
