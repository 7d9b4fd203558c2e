#!/usr/bin/env bash
# One LoopTool GRPO round with TRL, as the `local` training backend runs it: run.sh <spec.json>
# (loop config: `training: {backend: local, command: [recipes/trl-grpo/run.sh, "{spec}"], workDir: …}`).
#
# Every setting comes from the job spec (train.py). The Python is the project's own environment
# (.tools/py-trl, recipes/requirements/trl.txt; `looptool runtime prepare` installs it) unless LOOPTOOL_PYTHON names
# another (a cluster's). The reward server is started for the run by recipes/reward/with-reward-server.sh. On a
# machine without a GPU each process gets one torch thread (OMP_NUM_THREADS), as small CPUs need.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <spec.json>" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(cd "$HERE/../.." && pwd)
PYTHON=${LOOPTOOL_PYTHON:-$PROJECT/.tools/py-trl/bin/python}
if [ ! -x "$PYTHON" ]; then
  echo "run.sh: no Python at $PYTHON: run \`looptool runtime prepare\` (or set LOOPTOOL_PYTHON)" >&2
  exit 2
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec "$PROJECT/recipes/reward/with-reward-server.sh" "$1" -- "$PYTHON" "$HERE/train.py" "$1"
