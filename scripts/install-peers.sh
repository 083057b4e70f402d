#!/usr/bin/env bash
# Installs the real peers the tests and benchmarks run against, from Debian's apt, when
# they are missing: openssl (smime), python3-cryptography (Fernet), sip-tester (sipp),
# kamailio (SIP proxy), age (age files, interop and benchmark peer), openssh-client
# (ssh-keygen makes the SSH keys of the age interop tests), socat (stdio pairs), minisign
# (detached signatures), nats-server (the relay's JetStream store, docs/SCALE.md), tmux
# (missive chat in real terminals). Quiet when all are present. Runs before `npm test`
# (the `pretest` script).
set -euo pipefail

declare -A need=()
command -v openssl >/dev/null || need[openssl]=1
python3 -c 'import cryptography.fernet' 2>/dev/null || need[python3-cryptography]=1
command -v sipp >/dev/null || need[sip-tester]=1
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need[kamailio]=1
command -v age >/dev/null || need[age]=1
command -v ssh-keygen >/dev/null || need[openssh-client]=1
command -v socat >/dev/null || need[socat]=1
command -v minisign >/dev/null || need[minisign]=1
command -v nats-server >/dev/null || need[nats-server]=1
command -v tmux >/dev/null || need[tmux]=1

[ ${#need[@]} -eq 0 ] && exit 0

packages="${!need[*]}"
echo "install-peers: installing from apt: $packages" >&2
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "install-peers: need root (or password-less sudo) to apt-get install: $packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! "${run[@]}" apt-get install -y -q --no-install-recommends $packages >/dev/null; then
  "${run[@]}" apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  "${run[@]}" apt-get install -y -q --no-install-recommends $packages >/dev/null
fi
# Debian's package enables a system nats-server service; the tests start their own
# servers on free loopback ports, so one running on 4222 is left alone but not needed.
