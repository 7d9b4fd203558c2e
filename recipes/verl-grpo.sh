#!/usr/bin/env bash
# One LoopTool GRPO round with verl (LOOPTOOL-METHOD.md §2.3–2.4; the paper's settings), as the local training
# backend runs it: verl-grpo.sh <train.parquet> <base checkpoint or empty> <output dir>.
# Not run in CI (no GPU). Needs verl with vLLM rollouts; GPUS, MODEL and ROLLOUT_TP are read from the environment.
set -euo pipefail
DATASET="$1"; BASE="${2:-}"; OUTPUT="$3"
MODEL="${BASE:-${MODEL:-Qwen/Qwen3-8B}}"
GPUS="${GPUS:-8}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$OUTPUT"

# Each iteration warm-starts the weights and resets the optimizer (paper §5.1): a fresh run from the previous
# checkpoint, not a resume. KL and entropy are off; Clip-Higher 0.2/0.28; G = 16; lr 1e-6; batch 128; 2 epochs.
python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  data.train_files="$DATASET" data.val_files="$DATASET" \
  data.train_batch_size=128 data.max_prompt_length=4096 data.max_response_length=1024 \
  data.truncation=error data.filter_overlong_prompts=True \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.actor.optim.lr=1e-6 \
  actor_rollout_ref.actor.ppo_mini_batch_size=128 \
  actor_rollout_ref.actor.use_kl_loss=False actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.actor.clip_ratio_low=0.2 actor_rollout_ref.actor.clip_ratio_high=0.28 \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=16 actor_rollout_ref.rollout.temperature=1.0 \
  actor_rollout_ref.rollout.tensor_model_parallel_size="${ROLLOUT_TP:-$GPUS}" \
  algorithm.use_kl_in_reward=False \
  custom_reward_function.path="$HERE/looptool_reward.py" custom_reward_function.name=compute_score \
  trainer.n_gpus_per_node="$GPUS" trainer.nnodes=1 trainer.total_epochs=2 \
  trainer.save_freq=-1 trainer.default_local_dir="$OUTPUT/verl" trainer.logger='[console]'

# The newest actor checkpoint, in Hugging Face form, is what deploy serves.
LATEST="$(ls -d "$OUTPUT"/verl/global_step_* | sort -V | tail -n 1)"
python3 -m verl.model_merger merge --backend fsdp --local_dir "$LATEST/actor" --target_dir "$OUTPUT/hf"
echo "{\"checkpoint\": \"$OUTPUT/hf\"}" > "$OUTPUT/checkpoint.json"
