#!/usr/bin/env python3
"""After verl: the newest saved actor checkpoint in Hugging Face form, and the manifest deployment decides from.

    finish.py <spec.json>

Reads verl's tracker (`latest_checkpointed_iteration.txt`, written once a save is complete), merges that step's FSDP
shards with `python -m verl.model_merger merge --backend fsdp` into `<outputDir>/hf`, and writes
`<outputDir>/checkpoint.json` (core/training.ts CheckpointManifest). Full weights: the manifest names `hf/`, served by
restarting the server on it. LoRA: verl's merger writes the adapter to `hf/lora_adapter/` (adapter_config.json and
adapter_model.safetensors, next to the base weights it also writes into `hf/`); the manifest names the adapter, hot-
loaded on top of the model it was trained on. Exits non-zero, saying why, when verl saved nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The recipe folder stays free of __pycache__, whoever runs this.
sys.dont_write_bytecode = True
from overrides import CHECKPOINT_DIR, METRICS_FILE, SpecError, load_spec  # noqa: E402

# core/training.ts CHECKPOINT_MANIFEST_FILE.
MANIFEST_FILE = "checkpoint.json"
TRACKER_FILE = "latest_checkpointed_iteration.txt"
# The adapter folder verl's model merger writes inside its target folder (base_model_merger.save_lora_adapter).
LORA_ADAPTER_DIR = "lora_adapter"
# verl's metric names (trainer/ppo/metric_utils.py, workers/utils/losses.py) -> the manifest's.
MANIFEST_METRICS = {
    "critic/score/mean": "reward",
    "actor/pg_loss": "pgLoss",
    "response_length/mean": "responseLength",
}


class FinishError(RuntimeError):
    pass


def saved_step(checkpoints: Path) -> tuple[int, Path]:
    tracker = checkpoints / TRACKER_FILE
    if not tracker.is_file():
        raise FinishError(
            f"verl saved no checkpoint: {tracker} is missing (verl writes it after each complete save; "
            "training ended before its first save - see the training log above)"
        )
    text = tracker.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise FinishError(f"{tracker}: expected a step number, got {text!r}")
    actor = checkpoints / f"global_step_{int(text)}" / "actor"
    if not actor.is_dir():
        raise FinishError(f"{tracker} names step {text}, but {actor} is missing")
    return int(text), actor


def metrics_at(metrics_file: Path, step: int) -> dict[str, float]:
    """The manifest's metrics from verl's file logger: the saved step's record (the last one when it is absent)."""
    records = []
    if metrics_file.is_file():
        with metrics_file.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if isinstance(record, dict) and isinstance(record.get("data"), dict):
                    records.append(record)
    if not records:
        return {}
    last_logged = max(record.get("step", 0) for record in records)
    if last_logged > step:
        # Only with a save_freq above 1 (an extra override) and fewer steps than planned: say which weights these are.
        print(f"verl-grpo: warning: verl logged step {last_logged}, but its last saved step is {step}", file=sys.stderr)
    # A resumed job logs a step again: the latest record of the saved step wins.
    chosen = next((record for record in reversed(records) if record.get("step") == step), records[-1])
    data = chosen["data"]
    return {
        name: float(data[key])
        for key, name in MANIFEST_METRICS.items()
        if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool)
    }


def merge(actor: Path, target: Path) -> None:
    """verl's model merger into a fresh folder, moved into place only when it succeeded."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor),
        "--target_dir",
        str(partial),
    ]
    print(f"verl-grpo: merging {actor} into {target}", flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise FinishError(f"verl's model merger failed (exit {result.returncode}) on {actor}")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def write_json(path: Path, value: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def finish(spec: dict) -> dict:
    output = Path(spec["outputDir"])
    step, actor = saved_step(output / CHECKPOINT_DIR)
    hf = output / "hf"
    merge(actor, hf)
    init = spec["init"]
    if spec["weights"] == "lora":
        path = hf / LORA_ADAPTER_DIR
        if not (path / "adapter_config.json").is_file():
            raise FinishError(f"verl's merger wrote no LoRA adapter into {path}: were LoRA weights saved in {actor}?")
        # The adapter sits on the model it was trained on: π_0, or a full-weight π_{j-1} it started from.
        base = init["path"] if init and init["kind"] == "full" else spec["baseModel"]
    else:
        path, base = hf, spec["baseModel"]
    grpo = spec["grpo"]
    # The manifest counts optimizer steps (core/training.ts); each verl step updates once per mini-batch.
    updates_per_step = -(-grpo["trainBatchSize"] // grpo["miniBatchSize"])
    manifest = {
        "kind": spec["weights"],
        "path": str(path),
        "baseModel": base,
        "steps": step * updates_per_step,
        "metrics": metrics_at(output / METRICS_FILE, step),
    }
    write_json(output / MANIFEST_FILE, manifest)
    return manifest


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: finish.py <spec.json>", file=sys.stderr)
        return 2
    try:
        manifest = finish(load_spec(argv[1]))
    except (SpecError, FinishError) as error:
        print(f"verl-grpo: {error}", file=sys.stderr)
        return 1
    print(f"verl-grpo: checkpoint {manifest['path']} ({manifest['kind']}, {manifest['steps']} steps)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
