#!/usr/bin/env bash
# GPU acceptance of the real path (issue 10): one loop iteration on a small model with the verl recipe, twice -
# training a LoRA adapter that vLLM hot-loads, then full weights that vLLM is restarted on - against a real vLLM
# policy server, with the simulated judge and generator. Prints a pass/fail table; exits 0 only when every row passed.
# Not run in CI (no GPU there). Documented in recipes/README.md ("GPU acceptance").
#
#   scripts/gpu-acceptance.sh
#   scripts/gpu-acceptance.sh --restart-vllm <state dir> <checkpoint> <served model> <base url>
#       (the loop's deploy.restartCommand for the full-weight run: stops the vLLM it started last, starts
#        `vllm serve <checkpoint> --served-model-name <served model>` detached, returns at once)
#
# Needs: NVIDIA GPUs (nvidia-smi), a Python with `pip install "verl[vllm]==0.9.1"` (VERL_PYTHON), the vllm CLI,
# Node.js >= 20.19, curl.
# Environment (all optional):
#   MODEL               π_0: a Hugging Face id or a local folder (default Qwen/Qwen2.5-0.5B-Instruct)
#   VERL_PYTHON         the Python with verl and vLLM (default python3); VLLM: the vllm CLI (default vllm)
#   POLICY_PORT         the policy vLLM's port (default 8100); SIM_PORT: the simulated judge/generator's (default 8110)
#   SERVE_GPU_MEMORY    vLLM's share of its GPU (default 0.3); ROLLOUT_GPU_MEMORY: verl's rollout share (default 0.35)
#   SAMPLES             seed samples (default 64); LOOP_TIMEOUT_MINUTES: per loop (default 90)
#   ACCEPTANCE_DIR      work folder (default .data/gpu-acceptance/<time>)
# With two or more GPUs the policy server gets the last one and verl the others; with one, they share it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SELF="$ROOT/scripts/gpu-acceptance.sh"

# --- deploy.restartCommand ---------------------------------------------------------------------------------------

start_vllm() {
  # <state dir> <model or checkpoint> <served name> <base url>; serving settings from <state dir>/serve.env.
  local state="$1" model="$2" served="$3" base_url="$4"
  # shellcheck source=/dev/null
  source "$state/serve.env"
  local port="${base_url%/v1}"
  port="${port##*:}"
  if [[ -f "$state/vllm.pid" ]]; then
    local old
    old="$(cat "$state/vllm.pid")"
    # vLLM runs in a session of its own (setsid below): its process group takes its workers down with it.
    kill -TERM -- "-$old" 2>/dev/null || true
    for _ in $(seq 1 120); do
      kill -0 "$old" 2>/dev/null || break
      sleep 1
    done
    kill -KILL -- "-$old" 2>/dev/null || true
    rm -f "$state/vllm.pid"
  fi
  local extra=()
  if [[ "$SERVE_LORA" == 1 ]]; then
    extra=(--enable-lora --max-loras 4 --max-lora-rank 64)
  fi
  CUDA_VISIBLE_DEVICES="$SERVE_GPU" VLLM_ALLOW_RUNTIME_LORA_UPDATING=True setsid "$VLLM" serve "$model" \
    --served-model-name "$served" --host 127.0.0.1 --port "$port" \
    --gpu-memory-utilization "$SERVE_GPU_MEMORY" --max-model-len "$SERVE_MAX_LEN" "${extra[@]}" \
    >>"$state/vllm.log" 2>&1 </dev/null &
  echo "$!" >"$state/vllm.pid"
}

if [[ "${1:-}" == "--restart-vllm" ]]; then
  [[ $# -eq 5 ]] || {
    echo "usage: $0 --restart-vllm <state dir> <checkpoint> <served model> <base url>" >&2
    exit 2
  }
  start_vllm "$2" "$3" "$4" "$5"
  exit 0
fi

# --- the acceptance run ------------------------------------------------------------------------------------------

MODEL="${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}"
VERL_PYTHON="${VERL_PYTHON:-python3}"
VLLM="${VLLM:-vllm}"
POLICY_PORT="${POLICY_PORT:-8100}"
SIM_PORT="${SIM_PORT:-8110}"
SERVE_GPU_MEMORY="${SERVE_GPU_MEMORY:-0.3}"
ROLLOUT_GPU_MEMORY="${ROLLOUT_GPU_MEMORY:-0.35}"
SAMPLES="${SAMPLES:-64}"
LOOP_TIMEOUT_MINUTES="${LOOP_TIMEOUT_MINUTES:-90}"
STAMP="$(date +%Y%m%d-%H%M%S)"
WORK="${ACCEPTANCE_DIR:-$ROOT/.data/gpu-acceptance/$STAMP}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd -P)"
POLICY_URL="http://127.0.0.1:$POLICY_PORT/v1"
SIM_URL="http://127.0.0.1:$SIM_PORT/v1"
MAX_PROMPT=2048
MAX_RESPONSE=256

ROWS=()
declare -A RESULT DETAIL
record() { # <row> <PASS|FAIL> <detail>
  ROWS+=("$1")
  RESULT["$1"]="$2"
  DETAIL["$1"]="$3"
  printf '[%s] %s: %s\n' "$2" "$1" "$3"
}
looptool() { node "$ROOT/bin/looptool.js" "$@"; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [[ -f "$WORK/vllm.pid" ]]; then kill -TERM -- "-$(cat "$WORK/vllm.pid")" 2>/dev/null || true; fi
}
trap cleanup EXIT

print_table() {
  local failed=0 row
  echo
  echo "GPU acceptance ($MODEL, work folder $WORK)"
  printf '%-28s %-6s %s\n' check result detail
  printf '%-28s %-6s %s\n' ---------------------------- ------ ------
  for row in "${ROWS[@]}"; do
    printf '%-28s %-6s %s\n' "$row" "${RESULT[$row]}" "${DETAIL[$row]}"
    [[ "${RESULT[$row]}" == PASS ]] || failed=1
  done
  echo
  if [[ "$failed" == 0 ]]; then echo "All checks passed."; else echo "Some checks FAILED; logs are in $WORK."; fi
  return "$failed"
}

must() { # <row> <log file> <command...>: a setup step; when it fails, the table so far and the end
  local row="$1" log="$2"
  shift 2
  if ! "$@" >"$log" 2>&1; then
    record "$row" FAIL "$* failed: $(tail -n 3 "$log" | tr '\n' ' ')"
    print_table
    exit 1
  fi
}

wait_http() { # <url> <seconds>
  for _ in $(seq 1 "$2"); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

# 1. What must be installed.
GPU_COUNT="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
if [[ "$GPU_COUNT" -ge 1 ]]; then
  record "install: GPUs" PASS "$GPU_COUNT GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader | sort -u | paste -sd, -)"
else
  record "install: GPUs" FAIL "nvidia-smi lists no GPU"
fi
# transfer_queue: verl 0.9's trainer (trainer.use_v1) needs it; `pip install "verl[vllm]==0.9.1"` brings it.
if versions="$("$VERL_PYTHON" -c 'import verl, vllm, transfer_queue; print(f"verl {verl.__version__}, vllm {vllm.__version__}")' 2>&1)"; then
  if [[ "$versions" == "verl 0.9.1,"* ]]; then
    record "install: verl + vLLM" PASS "$versions ($VERL_PYTHON)"
  else
    record "install: verl + vLLM" FAIL "$versions: the recipe's overrides are verl 0.9.1's"
  fi
else
  record "install: verl + vLLM" FAIL "$VERL_PYTHON cannot import verl, vllm and transfer_queue: ${versions##*$'\n'}"
fi
if [[ ! -d "$ROOT/node_modules" ]]; then (cd "$ROOT" && npm ci --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1) || true; fi
if looptool --help >/dev/null 2>&1 && command -v "$VLLM" >/dev/null; then
  record "install: looptool + vllm CLI" PASS "node $(node --version), $(command -v "$VLLM")"
else
  record "install: looptool + vllm CLI" FAIL "node bin/looptool.js --help or '$VLLM' not runnable (see $WORK/npm-ci.log)"
fi
for row in "${ROWS[@]}"; do
  if [[ "${RESULT[$row]}" != PASS ]]; then
    print_table || exit 1
  fi
done

# GPUs: the policy server on the last one, verl on the others (or all on the one there is).
if [[ "$GPU_COUNT" -ge 2 ]]; then
  SERVE_GPU=$((GPU_COUNT - 1))
  TRAIN_GPUS="$(seq -s, 0 $((GPU_COUNT - 2)))"
  TRAIN_GPU_COUNT=$((GPU_COUNT - 1))
else
  SERVE_GPU=0
  TRAIN_GPUS=0
  TRAIN_GPU_COUNT=1
fi

# 2. Local services, the simulated judge/generator, seed data.
must "setup: services" "$WORK/services.log" npm run --silent --prefix "$ROOT" looptool -- services up
looptool sim serve --port "$SIM_PORT" >"$WORK/sim.log" 2>&1 &
PIDS+=("$!")
must "setup: seed data" "$WORK/seed.log" looptool sim seed --out "$WORK/seed.jsonl" --count "$SAMPLES" --seed 7
DATASET="gpu-acceptance-$STAMP"
must "setup: import" "$WORK/import.log" looptool data import "$WORK/seed.jsonl" --format openai --name "$DATASET"
must "setup: sim judge/generator" "$WORK/sim-ready.log" wait_http "$SIM_URL/models" 120

# 3. A worker whose training jobs see the training GPUs (the local backend's jobs inherit its environment).
CUDA_VISIBLE_DEVICES="$TRAIN_GPUS" GPUS="$TRAIN_GPU_COUNT" ROLLOUT_TP=1 VERL_PYTHON="$VERL_PYTHON" \
  node "$ROOT/bin/looptool.js" worker >"$WORK/worker.log" 2>&1 &
PIDS+=("$!")

# Batch shapes that split evenly over the training GPUs: 4 prompts per GPU x 4 rollouts, micro-batches of 2.
TRAIN_BATCH=$((4 * TRAIN_GPU_COUNT))

write_config() { # <file> <loop name> <weights>
  LOOP="$2" WEIGHTS="$3" DATASET="$DATASET" MODEL="$MODEL" POLICY_URL="$POLICY_URL" SIM_URL="$SIM_URL" \
    ROOT="$ROOT" WORK="$WORK" SELF="$SELF" TRAIN_BATCH="$TRAIN_BATCH" SAMPLES="$SAMPLES" \
    ROLLOUT_GPU_MEMORY="$ROLLOUT_GPU_MEMORY" MAX_PROMPT="$MAX_PROMPT" MAX_RESPONSE="$MAX_RESPONSE" \
    python3 - "$1" <<'PY'
import json, os, sys
e = os.environ
bfcl = "data/bfcl"
config = {
    "name": e["LOOP"],
    "seed": 7,
    "data": {"seedDataset": e["DATASET"], "initialSize": int(e["SAMPLES"])},
    "models": {
        "policy": {"baseUrls": [e["POLICY_URL"]], "model": e["MODEL"], "maxConcurrency": 32},
        "judge": {"baseUrls": [e["SIM_URL"]], "model": "sim-judge"},
        "generator": {"baseUrls": [e["SIM_URL"]], "model": "sim-generator"},
    },
    "training": {
        "backend": "local",
        "command": [
            "bash", f"{e['ROOT']}/recipes/verl-grpo/run.sh", "{spec}",
            f"actor_rollout_ref.rollout.gpu_memory_utilization={e['ROLLOUT_GPU_MEMORY']}",
        ],
        "workDir": f"{e['WORK']}/{e['LOOP']}",
        "weights": e["WEIGHTS"],
        "baseModel": e["MODEL"],
        "datasetFormat": "verl-parquet",
        "lora": {"rank": 16, "alpha": 32},
        "grpo": {
            "groupSize": 4, "trainBatchSize": int(e["TRAIN_BATCH"]), "microBatchSizePerDevice": 2,
            "epochs": 1, "maxSteps": 2,
            "maxPromptTokens": int(e["MAX_PROMPT"]), "maxResponseTokens": int(e["MAX_RESPONSE"]),
        },
    },
    "deploy": {
        "restartCommand": ["bash", e["SELF"], "--restart-vllm", e["WORK"], "{checkpoint}", "{served_model}", "{base_url}"],
        "readyTimeoutSeconds": 900,
    },
    "iterations": 1,
    "reward": "exact",
    "evaluation": {"sets": [{"name": "bfcl-simple", "files": [{
        "questions": f"{bfcl}/BFCL_v4_simple_python.json",
        "answers": f"{bfcl}/possible_answer/BFCL_v4_simple_python.json",
    }]}]},
}
with open(sys.argv[1], "w") as out:
    json.dump(config, out, indent=2)
PY
}

serve_settings() { # <lora: 1|0>
  {
    printf 'VLLM=%q\n' "$VLLM"
    printf 'SERVE_GPU=%q\n' "$SERVE_GPU"
    printf 'SERVE_GPU_MEMORY=%q\n' "$SERVE_GPU_MEMORY"
    printf 'SERVE_MAX_LEN=%q\n' "$((MAX_PROMPT + MAX_RESPONSE + 1024))"
    printf 'SERVE_LORA=%q\n' "$1"
  } >"$WORK/serve.env"
}

# Runs one loop of one iteration and records its four rows. <label> <weights>
run_loop() {
  local label="$1" weights="$2" loop="gpu-accept-$2-$STAMP"
  local config="$WORK/$loop.json" status="$WORK/$loop.status.json"
  serve_settings "$([[ "$weights" == lora ]] && echo 1 || echo 0)"
  start_vllm "$WORK" "$MODEL" "$MODEL" "$POLICY_URL"
  if ! wait_http "http://127.0.0.1:$POLICY_PORT/health" 900; then
    record "$label: training" FAIL "vLLM did not come up on $MODEL (see $WORK/vllm.log)"
    return
  fi
  write_config "$config" "$loop" "$weights"
  if ! looptool loop start --config "$config" >>"$WORK/loops.log" 2>&1; then
    record "$label: training" FAIL "looptool loop start failed (see $WORK/loops.log)"
    return
  fi
  local deadline=$((SECONDS + LOOP_TIMEOUT_MINUTES * 60)) state=RUNNING
  while ((SECONDS < deadline)); do
    if looptool loop status "$loop" --json >"$status" 2>>"$WORK/loops.log"; then
      state="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workflowStatus"])' "$status")"
      [[ "$state" == RUNNING ]] || break
    fi
    sleep 20
  done
  looptool loop status "$loop" >"$WORK/$loop.status.txt" 2>&1 || true
  # The four rows, from the loop's own status, the recipe's manifest and the policy server itself.
  python3 - "$status" "$state" "$weights" "$POLICY_URL" "$ROOT/.data" "$loop" >"$WORK/$loop.rows" <<'PY' || true
import glob, json, os, sys, urllib.request
status_file, state, weights, base, data_dir, loop = sys.argv[1:]
def row(name, ok, detail): print(f"{name}\t{'PASS' if ok else 'FAIL'}\t{detail}")
try:
    status = json.load(open(status_file))
except Exception as error:
    status = {"history": []}
    row("training", False, f"no loop status: {error}")
    sys.exit()
it = next((h for h in status.get("history", []) if h.get("iteration") == 1), {})
training = it.get("training") or {}
row("training", state == "COMPLETED" and training.get("steps", 0) >= 1 and training.get("kind") == weights,
    f"loop {state.lower()}, {training.get('steps', 0)} verl step(s), {weights}, metrics {training.get('metrics', {})}")
manifests = glob.glob(os.path.join(data_dir, "**", loop, "iter-1", "checkpoint", "checkpoint.json"), recursive=True)
manifest = json.load(open(manifests[0])) if manifests else {}
path = manifest.get("path", "")
need = ["adapter_config.json", "adapter_model.safetensors"] if weights == "lora" else ["config.json"]
files_ok = bool(path) and all(os.path.exists(os.path.join(path, f)) for f in need)
row("checkpoint manifest", manifest.get("kind") == weights and files_ok and it.get("checkpoint") == path,
    f"{manifests[0] if manifests else 'no checkpoint.json'} -> {path or '?'}")
served = it.get("servedModel", "")
try:
    listed = json.load(urllib.request.urlopen(f"{base}/models", timeout=30))["data"]
except Exception as error:
    listed = []
entry = next((m for m in listed if m.get("id") == served), None)
row("deploy", bool(served) and entry is not None and entry.get("root") == path,
    f"{served or 'nothing'} served from {entry.get('root') if entry else '?'} ({'hot-loaded adapter' if weights == 'lora' else 'restarted server'})")
probe = it.get("probe") or {}
try:
    body = json.dumps({"model": served, "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 16}).encode()
    request = urllib.request.Request(f"{base}/chat/completions", data=body, headers={"content-type": "application/json"})
    reply = json.load(urllib.request.urlopen(request, timeout=120))["choices"][0]["message"]["content"]
except Exception as error:
    reply = None
row("probe", sum(v for v in probe.values() if isinstance(v, (int, float))) > 0 and bool(reply),
    f"probe counts {probe}, accuracy {it.get('accuracy')}, {served} answers {reply!r:.40}")
PY
  local name result detail
  while IFS=$'\t' read -r name result detail; do
    record "$label: $name" "$result" "$detail"
  done <"$WORK/$loop.rows"
  if [[ "$state" == RUNNING ]]; then
    record "$label: finished in time" FAIL "still running after $LOOP_TIMEOUT_MINUTES min; see looptool loop status $loop"
  fi
}

run_loop lora lora
run_loop full full

echo "The local services keep running (npm run services:down stops them)."
print_table
