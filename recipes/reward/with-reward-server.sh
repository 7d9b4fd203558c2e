#!/usr/bin/env bash
# Runs a trainer command with the looptool reward server reachable: `with-reward-server.sh <spec.json> -- <command…>`.
#
# The recipes' launchers wrap their trainer in it, so recipes/reward/looptool_reward.py finds LOOPTOOL_REWARD_URL and
# LOOPTOOL_REWARD_MODE (the spec's `reward.mode`) in its environment. A server the caller already runs is used as is
# (LOOPTOOL_REWARD_URL set, or the spec's `reward.url`); otherwise this starts `looptool reward serve` on a free port
# for the length of the command and stops it when the command ends, whichever way it ends. Exits with the command's
# status.
set -euo pipefail

usage() {
  echo "usage: $0 <spec.json> -- <command…>" >&2
  exit 2
}
[ $# -ge 3 ] && [ "$2" = "--" ] || usage
spec=$1
shift 2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(cd "$HERE/../.." && pwd)
# How long the server may take to listen: a first run builds dist/ before it starts.
READY_TIMEOUT_SECONDS=${LOOPTOOL_REWARD_READY_TIMEOUT:-120}

# The spec's reward settings (core/training.ts TrainingJobSpec.reward): the mode, then the URL or an empty line.
if ! reward=$(python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    reward = json.load(f)["reward"]
print(reward["mode"])
print(reward.get("url") or "")
' "$spec" 2>&1); then
  echo "with-reward-server.sh: cannot read reward.mode from $spec: ${reward##*$'\n'}" >&2
  exit 2
fi
{
  read -r mode
  read -r spec_url || true
} <<<"$reward"
export LOOPTOOL_REWARD_MODE=$mode

if [ -n "${LOOPTOOL_REWARD_URL:-}" ] || [ -n "$spec_url" ]; then
  export LOOPTOOL_REWARD_URL=${LOOPTOOL_REWARD_URL:-$spec_url}
  exec "$@"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/looptool-reward.XXXXXX")
ready=$scratch/url
server=
child=
cleanup() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
# A signal to this script ends the command and the server (through the EXIT trap), with the shell's usual status.
trap 'exit 143' TERM
trap 'exit 130' INT

# Its output goes to stderr, next to the trainer's log, so a failing server explains itself there.
node "$PROJECT/bin/looptool.js" reward serve --mode "$mode" --port 0 --ready-file "$ready" >&2 &
server=$!
waited=0
until [ -s "$ready" ]; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "with-reward-server.sh: the reward server exited before it listened (its output is above)" >&2
    exit 1
  fi
  if [ "$waited" -ge $((READY_TIMEOUT_SECONDS * 10)) ]; then
    echo "with-reward-server.sh: the reward server did not listen within ${READY_TIMEOUT_SECONDS} s" >&2
    exit 1
  fi
  sleep 0.1
  waited=$((waited + 1))
done
LOOPTOOL_REWARD_URL=$(cat "$ready")
export LOOPTOOL_REWARD_URL

# In the background and waited for, so that a TERM to this script is handled now rather than after the command ends
# (a trainer reads no stdin, which a background command loses).
set +e
"$@" &
child=$!
wait "$child"
status=$?
child=
exit "$status"
