#!/usr/bin/env bash
# One LoopTool GRPO round with verl, as the `local` training backend runs it (LOOPTOOL-METHOD.md §2.3-2.4):
#
#   run.sh <spec.json> [extra Hydra overrides...]
#
# The job spec (core/training.ts) carries every hyperparameter; overrides.py turns it into verl's Hydra overrides.
# verl trains under recipes/reward/with-reward-server.sh (the reward server the reward function asks), progress.py
# keeps <outputDir>/progress.json current, and finish.py merges the newest saved step into <outputDir>/hf and writes
# <outputDir>/checkpoint.json. Exits non-zero, saying why, when a step fails or no checkpoint was saved.
#
# Environment (cluster resources, not hyperparameters): GPUS per node (default: what nvidia-smi lists), NNODES
# (default 1), ROLLOUT_TP (vLLM tensor parallel size, default 1), VERL_PYTHON (the interpreter with verl and vLLM,
# default python3). Extra arguments go to verl last, so they win (e.g. actor_rollout_ref.rollout.gpu_memory_utilization=0.6).
# Works from any working directory: every path is absolute.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
RECIPES="$(dirname "$HERE")"
PYTHON="${VERL_PYTHON:-python3}"

if [[ "${1:-}" == "--train" ]]; then
  # Under with-reward-server.sh: LOOPTOOL_REWARD_URL is known now, and overrides.py forwards it to verl's workers.
  SPEC="$2"
  shift 2
  OVERRIDES="$("$PYTHON" "$HERE/overrides.py" "$SPEC")"
  OUTPUT="$("$PYTHON" "$HERE/overrides.py" --output-dir "$SPEC")"
  mapfile -t ARGS <<<"$OVERRIDES"
  # Hydra's own logs go to the job's folder, not to outputs/ under whatever directory the job started in.
  exec "$PYTHON" -m verl.trainer.main_ppo "${ARGS[@]}" "hydra.run.dir=$OUTPUT/hydra" "$@"
fi

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: run.sh <spec.json> [extra Hydra overrides...]" >&2
  exit 2
fi
if [[ ! -f "$1" ]]; then
  echo "verl-grpo: no job spec at $1" >&2
  exit 2
fi
SPEC="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
shift

if [[ -z "${GPUS:-}" ]] && command -v nvidia-smi >/dev/null; then
  GPUS="$(nvidia-smi -L | grep -c '^GPU ' || true)"
  [[ "$GPUS" -gt 0 ]] && export GPUS || unset GPUS
fi

# A bad spec or cluster setting fails here, before the reward server or Ray start.
"$PYTHON" "$HERE/overrides.py" "$SPEC" >/dev/null
OUTPUT="$("$PYTHON" "$HERE/overrides.py" --output-dir "$SPEC")"
mkdir -p "$OUTPUT"

TRAINING=
PROGRESS=
stop() { # <pid>...: ends what this script started (a cancelled job's signal reaches it first)
  for pid in "$@"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
}
# In the background and waited for, so that a TERM is handled now rather than when training ends.
trap 'stop "$TRAINING" "$PROGRESS"; exit 143' TERM
trap 'stop "$TRAINING" "$PROGRESS"; exit 130' INT
bash "$RECIPES/reward/with-reward-server.sh" "$SPEC" -- bash "$HERE/run.sh" --train "$SPEC" "$@" &
TRAINING=$!
"$PYTHON" "$HERE/progress.py" "$SPEC" --while-running "$TRAINING" &
PROGRESS=$!

status=0
wait "$TRAINING" || status=$?
stop "$PROGRESS"
trap - TERM INT
if [[ "$status" -ne 0 ]]; then
  echo "verl-grpo: training exited with status $status; no checkpoint.json written" >&2
  exit "$status"
fi

exec "$PYTHON" "$HERE/finish.py" "$SPEC"
