"""One LoopTool GRPO round with TRL's GRPOTrainer, driven entirely by looptool's job spec.

    python train.py <spec.json>

The spec (core/training.ts TrainingJobSpec) carries every setting: the dataset export (TRL JSONL or verl parquet: both
hold the rendered prompt, the label and the tools), π_0 and the checkpoint to warm-start from (a new run with a fresh
optimizer, paper §5.1), full weights or LoRA, the GRPO hyperparameters and the reward mode. Nothing is hard-coded here.
The reward is looptool's own checker behind `looptool reward serve` (recipes/reward/looptool_reward.py), so training
scores completions exactly as the probe and evaluation do; run.sh starts that server.

Writes `<output>/progress.json` ({step, total_steps}) while training, then the model (full weights or the adapter) to
`<output>/hf` and `<output>/checkpoint.json` (kind, path, baseModel, steps, final metrics), which the loop's training
backend reports and deployment decides from. Runs on CPU (tiny models; one thread per process on small machines) and on
GPUs; with LOOPTOOL_TRL_VLLM_SERVER=host:port the rollouts go to `trl vllm-serve` (vLLM server mode).
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reward"))

import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from looptool_reward import trl_reward  # noqa: E402


def write_json(path, value):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def load_rows(dataset):
    """Both training exports as TRL rows: prompt (chat messages), ground_truth (label text), tools (JSON text)."""
    if dataset["format"] == "trl-jsonl":
        return load_dataset("json", data_files=dataset["path"], split="train")
    rows = load_dataset("parquet", data_files=dataset["path"], split="train")
    return rows.map(
        lambda row: {
            "prompt": row["prompt"],
            "ground_truth": row["reward_model"]["ground_truth"],
            "tools": row["extra_info"].get("tools") or "[]",
        },
        remove_columns=[c for c in rows.column_names if c != "prompt"],
    )


class Progress(TrainerCallback):
    """progress.json after every optimizer step: the backend's heartbeat reads it."""

    def __init__(self, path):
        self.path = path

    def on_step_end(self, args, state, control, **kwargs):
        write_json(self.path, {"step": state.global_step, "total_steps": state.max_steps})


def main():
    spec_path = sys.argv[1]
    with open(spec_path) as f:
        spec = json.load(f)
    grpo, lora, init = spec["grpo"], spec["lora"], spec["init"]
    output = spec["outputDir"]
    os.makedirs(output, exist_ok=True)
    hf_dir = os.path.join(output, "hf")
    cpu = not torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))

    # Warm start: a full checkpoint is the new starting weights; a LoRA checkpoint's adapter is trained further on
    # its base. Either way the optimizer starts fresh (a new Trainer).
    start_from = init["path"] if init and init["kind"] == "full" else spec["baseModel"]
    tokenizer = AutoTokenizer.from_pretrained(start_from)
    model = AutoModelForCausalLM.from_pretrained(start_from, dtype=torch.float32 if cpu else torch.bfloat16)
    peft_config = None
    if spec["weights"] == "lora":
        from peft import LoraConfig, PeftModel

        if init and init["kind"] == "lora":
            model = PeftModel.from_pretrained(model, init["path"], is_trainable=True)
        else:
            peft_config = LoraConfig(
                r=lora["rank"],
                lora_alpha=lora["alpha"],
                target_modules=lora["targetModules"],
                task_type="CAUSAL_LM",
            )

    rows = load_rows(spec["dataset"])
    # verl's filter_overlong_prompts: a prompt longer than the budget is dropped, never truncated from the left.
    before = len(rows)
    rows = rows.filter(
        lambda row: len(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True))
        <= grpo["maxPromptTokens"]
    )
    if len(rows) == 0:
        sys.exit(f"no training rows: all {before} prompts are longer than maxPromptTokens={grpo['maxPromptTokens']}")
    print(f"{len(rows)} training rows ({before - len(rows)} over the prompt budget dropped)", flush=True)

    group = grpo["groupSize"]
    micro = grpo["microBatchSizePerDevice"]
    mini = grpo.get("miniBatchSize") or grpo["trainBatchSize"]
    # TRL counts completions: one optimizer step sees mini × G of them, one generation round batch × G.
    per_step = mini * group
    if per_step % (micro * world) != 0:
        sys.exit(f"miniBatchSize × groupSize = {per_step} is not a multiple of microBatchSizePerDevice × devices = {micro * world}")
    if grpo["trainBatchSize"] % mini != 0:
        sys.exit(f"trainBatchSize={grpo['trainBatchSize']} is not a multiple of miniBatchSize={mini}")
    vllm_server = os.environ.get("LOOPTOOL_TRL_VLLM_SERVER")
    config = GRPOConfig(
        output_dir=os.path.join(output, "trainer"),
        seed=spec.get("seed", 0),
        learning_rate=grpo["learningRate"],
        # verl's actor optimizer keeps the rate constant (no warmup, no decay); so does this recipe.
        lr_scheduler_type="constant",
        num_generations=group,
        temperature=grpo["rolloutTemperature"],
        top_p=1.0,
        max_completion_length=grpo["maxResponseTokens"],
        epsilon=grpo["clipLow"],
        epsilon_high=grpo["clipHigh"],
        beta=grpo["klCoef"],
        entropy_coef=grpo["entropyCoef"],
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=per_step // (micro * world),
        steps_per_generation=(grpo["trainBatchSize"] // mini) * (per_step // (micro * world)),
        num_train_epochs=grpo["epochs"],
        max_steps=grpo.get("maxSteps") or -1,
        use_cpu=cpu,
        bf16=not cpu,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_dropout=True,
        **({"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": f"http://{vllm_server}"} if vllm_server else {}),
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=trl_reward,
        args=config,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Progress(os.path.join(output, "progress.json"))],
    )
    trainer.train()

    trainer.save_model(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    # The per-step logs, averaged over the run (the last line of the history is the run summary, not a step).
    steps_logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    metrics = {}
    for key in ("reward", "reward_std", "loss", "grad_norm", "frac_reward_zero_std", "completions/mean_length"):
        values = [entry[key] for entry in steps_logged if isinstance(entry.get(key), (int, float)) and math.isfinite(entry[key])]
        if values:
            metrics[key.replace("/", "_")] = float(sum(values) / len(values))
    steps = trainer.state.global_step
    write_json(
        os.path.join(output, "checkpoint.json"),
        {
            "kind": spec["weights"],
            "path": hf_dir,
            "baseModel": init["baseModel"] if init else spec["baseModel"],
            "steps": steps,
            "metrics": metrics,
        },
    )
    print(f"checkpoint {hf_dir}: {steps} steps, {json.dumps(metrics)}", flush=True)


if __name__ == "__main__":
    main()
