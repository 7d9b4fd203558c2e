#!/usr/bin/env python3
"""verl's Hydra overrides for one LoopTool GRPO round, read from the loop's job spec.

    overrides.py <spec.json>               one override per line, for `python3 -m verl.trainer.main_ppo`
    overrides.py --output-dir <spec.json>  the job's output folder (absolute), for run.sh

The spec is core/training.ts's TrainingJobSpec as the loop writes it (every default already filled in), so this file
holds no hyperparameter of its own: each one comes from the spec. Cluster resources are not hyperparameters and come
from the environment: GPUS (per node, default 1), NNODES (default 1), ROLLOUT_TP (vLLM tensor parallel size,
default 1). LOOPTOOL_REWARD_URL, when set, is forwarded to verl's Ray workers, where the reward function runs (with the
spec's reward mode).

Keys are verl 0.9.1's (recipes/requirements/verl.txt pins it); check_config.py composes them with verl's own config
and runs verl's validation, and test/e2e/verl-recipe.test.ts does that for every release we pin.
Standard library only: run.sh calls this before anything else starts, with whatever python3 the GPU machine has.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The reward function verl calls; it has no checking logic of its own (it asks the reward server, recipes/reward/).
REWARD_MODULE = HERE.parent / "reward" / "looptool_reward.py"
# verl 0.9's reward loop calls a reward function once per rollout (`reward.reward_manager.name=naive`), with
# (data_source, solution_str, ground_truth, extra_info); an `async def` one runs concurrently within each worker.
REWARD_FUNCTION = "compute_score"
# verl's file logger writes one JSON line per step here (run.sh: progress; finish.py: the manifest's metrics).
METRICS_FILE = "metrics.jsonl"
# Where verl writes its checkpoints inside the job's output folder (global_step_<n>/actor/ …).
CHECKPOINT_DIR = "verl"
# verl 0.9 deletes the previous checkpoint only once the next is saved (CheckpointManager.register_checkpoint), so a
# job killed while saving still has one to resume from.
CHECKPOINTS_KEPT = 1


class SpecError(ValueError):
    """A job spec or environment value the recipe cannot run with; the message names the file and the field."""


@dataclass(frozen=True)
class Cluster:
    gpus_per_node: int
    nnodes: int
    rollout_tp: int

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nnodes


# --- reading the spec: every field checked, every error located -------------------------------------------------


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"{self.source}: {where}: {message}")

    def obj(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {json.dumps(value)}")
        return value

    def get(self, parent: dict, key: str, where: str, *, optional: bool = False):
        path = f"{where}.{key}" if where else key
        if key not in parent or parent[key] is None:
            if optional:
                return None, path
            raise self.fail(path, "missing")
        return parent[key], path

    def string(self, parent: dict, key: str, where: str = "", *, optional: bool = False) -> str | None:
        value, path = self.get(parent, key, where, optional=optional)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {json.dumps(value)}")
        return value

    def choice(self, parent: dict, key: str, choices: tuple[str, ...], where: str = "") -> str:
        value = self.string(parent, key, where)
        if value not in choices:
            path = f"{where}.{key}" if where else key
            raise self.fail(path, f"expected one of {', '.join(choices)}, got {json.dumps(value)}")
        return value

    def integer(
        self, parent: dict, key: str, where: str, *, minimum: int | None, optional: bool = False
    ) -> int | None:
        value, path = self.get(parent, key, where, optional=optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            bound = "" if minimum is None else f" >= {minimum}"
            raise self.fail(path, f"expected an integer{bound}, got {json.dumps(value)}")
        return value

    def number(self, parent: dict, key: str, where: str, *, positive: bool) -> float:
        value, path = self.get(parent, key, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
            raise self.fail(path, f"expected a {'positive' if positive else 'non-negative'} number, got {json.dumps(value)}")
        return value


def _absolute(path: str, base: Path) -> str:
    """Paths in a spec are absolute as the loop writes them; a relative one is read against the spec's folder."""
    return str((base / path).resolve()) if not os.path.isabs(path) else os.path.normpath(path)


def load_spec(spec_path: str) -> dict:
    """The job spec, checked field by field, with every path made absolute."""
    source = str(spec_path)
    try:
        with open(spec_path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as error:
        raise SpecError(f"{source}: cannot read the job spec: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise SpecError(f"{source}:{error.lineno}:{error.colno}: not JSON: {error.msg}") from error
    read = _Reader(source)
    spec = read.obj(raw, "spec")
    base = Path(spec_path).resolve().parent

    dataset = read.obj(read.get(spec, "dataset", "")[0], "dataset")
    dataset_format = read.string(dataset, "format", "dataset")
    if dataset_format != "verl-parquet":
        raise read.fail(
            "dataset.format",
            f"the verl recipe reads verl-parquet, got {json.dumps(dataset_format)} "
            "(set training.datasetFormat: verl-parquet in the loop config)",
        )

    grpo = read.obj(read.get(spec, "grpo", "")[0], "grpo")
    lora = read.obj(read.get(spec, "lora", "")[0], "lora")
    target_modules, target_path = read.get(lora, "targetModules", "lora")
    if target_modules != "all-linear" and not (
        isinstance(target_modules, list) and target_modules and all(isinstance(m, str) and m for m in target_modules)
    ):
        raise read.fail(target_path, f'expected "all-linear" or a list of module names, got {json.dumps(target_modules)}')

    init_raw = spec.get("init")
    init = None
    if init_raw is not None:
        init_obj = read.obj(init_raw, "init")
        init = {
            "kind": read.choice(init_obj, "kind", ("full", "lora"), "init"),
            "path": _absolute(read.string(init_obj, "path", "init"), base),
            "baseModel": read.string(init_obj, "baseModel", "init"),
            "steps": read.integer(init_obj, "steps", "init", minimum=0),
        }

    reward = read.obj(read.get(spec, "reward", "")[0], "reward")
    checked = {
        "jobKey": read.string(spec, "jobKey"),
        "loopName": read.string(spec, "loopName"),
        "seed": read.integer(spec, "seed", "", minimum=None),
        "dataset": {
            "path": _absolute(read.string(dataset, "path", "dataset"), base),
            "rows": read.integer(dataset, "rows", "dataset", minimum=0),
        },
        "baseModel": read.string(spec, "baseModel"),
        "init": init,
        "weights": read.choice(spec, "weights", ("full", "lora")),
        "lora": {
            "rank": read.integer(lora, "rank", "lora", minimum=1),
            "alpha": read.integer(lora, "alpha", "lora", minimum=1),
            "targetModules": target_modules,
        },
        "grpo": {
            "groupSize": read.integer(grpo, "groupSize", "grpo", minimum=1),
            "learningRate": read.number(grpo, "learningRate", "grpo", positive=True),
            "clipLow": read.number(grpo, "clipLow", "grpo", positive=True),
            "clipHigh": read.number(grpo, "clipHigh", "grpo", positive=True),
            "klCoef": read.number(grpo, "klCoef", "grpo", positive=False),
            "entropyCoef": read.number(grpo, "entropyCoef", "grpo", positive=False),
            "rolloutTemperature": read.number(grpo, "rolloutTemperature", "grpo", positive=True),
            "maxPromptTokens": read.integer(grpo, "maxPromptTokens", "grpo", minimum=1),
            "maxResponseTokens": read.integer(grpo, "maxResponseTokens", "grpo", minimum=1),
            "trainBatchSize": read.integer(grpo, "trainBatchSize", "grpo", minimum=1),
            # core/config.ts: "@default trainBatchSize" (one optimizer update per batch).
            "miniBatchSize": read.integer(grpo, "miniBatchSize", "grpo", minimum=1, optional=True)
            or grpo["trainBatchSize"],
            "microBatchSizePerDevice": read.integer(grpo, "microBatchSizePerDevice", "grpo", minimum=1),
            "epochs": read.integer(grpo, "epochs", "grpo", minimum=1),
            "maxSteps": read.integer(grpo, "maxSteps", "grpo", minimum=1, optional=True),
        },
        "reward": {"mode": read.choice(reward, "mode", ("exact", "bfcl_ast"), "reward")},
        "outputDir": _absolute(read.string(spec, "outputDir"), base),
    }
    _check_shapes(checked, read)
    return checked


def _check_shapes(spec: dict, read: _Reader) -> None:
    """What verl's own validation lets through but the run would die on later, or end without a checkpoint."""
    grpo = spec["grpo"]
    if spec["dataset"]["rows"] < grpo["trainBatchSize"]:
        # verl drops the last incomplete batch: zero steps, zero checkpoints, after minutes of loading models.
        raise read.fail(
            "dataset.rows",
            f"{spec['dataset']['rows']} rows make no full batch of grpo.trainBatchSize {grpo['trainBatchSize']}",
        )
    init = spec["init"]
    if init and init["kind"] == "lora" and spec["weights"] == "full":
        raise read.fail(
            "init.kind",
            "a LoRA adapter cannot warm-start full-weight training; merge it into its base model first, "
            "or keep training.weights: lora",
        )
    if init and init["kind"] == "lora" and init["baseModel"] != spec["baseModel"]:
        raise read.fail(
            "init.baseModel",
            f"the previous adapter was trained on {init['baseModel']}, this round's base model is {spec['baseModel']}",
        )


def cluster_from_env(env: dict[str, str]) -> Cluster:
    def positive(name: str, default: int) -> int:
        text = env.get(name, "").strip()
        if not text:
            return default
        if not text.isdigit() or int(text) < 1:
            raise SpecError(f"environment: {name}: expected a positive integer, got {json.dumps(text)}")
        return int(text)

    cluster = Cluster(positive("GPUS", 1), positive("NNODES", 1), positive("ROLLOUT_TP", 1))
    if cluster.gpus % cluster.rollout_tp != 0:
        raise SpecError(
            f"environment: ROLLOUT_TP: {cluster.rollout_tp} does not divide the {cluster.gpus} GPUs "
            "(vLLM rollout replicas each take ROLLOUT_TP GPUs)"
        )
    return cluster


def check_batches(spec: dict, cluster: Cluster) -> None:
    """verl's workers assert these only once the models are loaded (engine_workers.py, engine/utils.py)."""
    grpo = spec["grpo"]
    sequences = grpo["miniBatchSize"] * grpo["groupSize"]
    if sequences % cluster.gpus != 0:
        raise SpecError(
            f"grpo.miniBatchSize {grpo['miniBatchSize']} x grpo.groupSize {grpo['groupSize']} = {sequences} sequences "
            f"per update do not split evenly over {cluster.gpus} GPUs"
        )
    per_gpu = sequences // cluster.gpus
    if per_gpu % grpo["microBatchSizePerDevice"] != 0:
        raise SpecError(
            f"each GPU's {per_gpu} sequences per update are not a whole number of "
            f"grpo.microBatchSizePerDevice {grpo['microBatchSizePerDevice']} micro-batches"
        )


def planned_steps(spec: dict) -> int:
    """verl's training steps (one batch of grpo.trainBatchSize prompts each): full batches per epoch times epochs,
    capped by maxSteps, counted before verl drops overlong prompts (which can only make them fewer)."""
    grpo = spec["grpo"]
    steps = (spec["dataset"]["rows"] // grpo["trainBatchSize"]) * grpo["epochs"]
    return min(steps, grpo["maxSteps"]) if grpo["maxSteps"] else steps


# --- Hydra values ----------------------------------------------------------------------------------------------------


def hydra_value(value) -> str:
    """One value in Hydra's override grammar. Strings are always quoted, so a path that looks like a number, a list or
    holds a space stays a string."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, str):
        if "\n" in value or "${" in value:
            # Hydra would resolve ${…} as an interpolation even inside quotes.
            raise SpecError(f"cannot pass {json.dumps(value)} to Hydra (newline or '${{')")
        # Inside quotes Hydra unescapes \' and the backslashes just before a quote (or the closing one).
        out, pending = [], 0
        for char in value:
            if char == "\\":
                pending += 1
                continue
            if char == "'":
                out.append("\\" * (pending * 2) + "\\'")
            else:
                out.append("\\" * pending + char)
            pending = 0
        out.append("\\" * (pending * 2))
        return "'" + "".join(out) + "'"
    raise SpecError(f"no Hydra form for {value!r}")


def build_overrides(spec: dict, cluster: Cluster, reward_url: str | None = None) -> list[str]:
    grpo = spec["grpo"]
    init = spec["init"]
    lora = spec["weights"] == "lora"
    output = Path(spec["outputDir"])
    kl_loss = grpo["klCoef"] > 0

    # π_{j-1} with a fresh optimizer (paper §5.1): a full checkpoint becomes the model itself; a LoRA one is loaded as
    # the adapter to keep training on its base. Either way this job's own folder holds no optimizer state from it.
    model_path = init["path"] if init and init["kind"] == "full" else spec["baseModel"]
    pairs: list[tuple[str, object]] = [
        ("algorithm.adv_estimator", "grpo"),
        # GRPO's KL term, when wanted, is a loss on the actor, never a penalty folded into the reward.
        ("algorithm.use_kl_in_reward", False),
        # GRPO's baseline is the group mean: no value model to train.
        ("critic.enable", False),
        ("data.train_files", spec["dataset"]["path"]),
        # The loop evaluates each checkpoint itself; verl needs a validation file but never uses it here.
        ("data.val_files", spec["dataset"]["path"]),
        # The loop's seed drives batch order, mini-batch shuffling and vLLM's sampling: a rerun draws the same rollouts.
        ("data.seed", spec["seed"]),
        ("actor_rollout_ref.actor.data_loader_seed", spec["seed"]),
        ("actor_rollout_ref.rollout.seed", spec["seed"]),
        ("data.train_batch_size", grpo["trainBatchSize"]),
        ("data.max_prompt_length", grpo["maxPromptTokens"]),
        ("data.max_response_length", grpo["maxResponseTokens"]),
        # Overlong prompts are dropped, never cut: a cut prompt loses its tools or its question (LOOPTOOL-METHOD.md).
        ("data.filter_overlong_prompts", True),
        ("data.truncation", "error"),
        ("actor_rollout_ref.model.path", model_path),
        ("actor_rollout_ref.actor.optim.lr", float(grpo["learningRate"])),
        ("actor_rollout_ref.actor.ppo_mini_batch_size", grpo["miniBatchSize"]),
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", grpo["microBatchSizePerDevice"]),
        ("actor_rollout_ref.actor.clip_ratio_low", float(grpo["clipLow"])),
        ("actor_rollout_ref.actor.clip_ratio_high", float(grpo["clipHigh"])),
        ("actor_rollout_ref.actor.entropy_coeff", float(grpo["entropyCoef"])),
        ("actor_rollout_ref.actor.use_kl_loss", kl_loss),
        ("actor_rollout_ref.actor.kl_loss_coef", float(grpo["klCoef"])),
        ("actor_rollout_ref.rollout.name", "vllm"),
        ("actor_rollout_ref.rollout.n", grpo["groupSize"]),
        ("actor_rollout_ref.rollout.temperature", float(grpo["rolloutTemperature"])),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size", cluster.rollout_tp),
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", grpo["microBatchSizePerDevice"]),
        # Used only when a KL loss needs the reference policy; verl's validation asks for it then.
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", grpo["microBatchSizePerDevice"]),
        ("reward.custom_reward_function.path", str(REWARD_MODULE)),
        ("reward.custom_reward_function.name", REWARD_FUNCTION),
        ("reward.reward_manager.name", "naive"),
        ("trainer.n_gpus_per_node", cluster.gpus_per_node),
        ("trainer.nnodes", cluster.nnodes),
        ("trainer.total_epochs", grpo["epochs"]),
        # Every step is saved (only the newest kept): the final step is always saved, even when verl drops overlong
        # prompts and the epochs end before the planned step count, and a killed job loses at most one step.
        ("trainer.save_freq", 1),
        ("trainer.max_actor_ckpt_to_keep", CHECKPOINTS_KEPT),
        ("trainer.default_local_dir", str(output / CHECKPOINT_DIR)),
        # Resumes this job's own checkpoints after a kill; a new iteration has a new folder, so it never resumes
        # another iteration's optimizer.
        ("trainer.resume_mode", "auto"),
        ("trainer.val_before_train", False),
        ("trainer.test_freq", -1),
        ("trainer.logger", ["console", "file"]),
        ("trainer.project_name", spec["loopName"]),
        ("trainer.experiment_name", spec["jobKey"]),
    ]
    if grpo["maxSteps"]:
        pairs.append(("trainer.total_training_steps", grpo["maxSteps"]))
    if lora:
        pairs += [
            ("actor_rollout_ref.model.lora_rank", spec["lora"]["rank"]),
            ("actor_rollout_ref.model.lora_alpha", spec["lora"]["alpha"]),
            ("actor_rollout_ref.model.target_modules", spec["lora"]["targetModules"]),
            # verl's LoRA guide: vLLM must load the base weights from safetensors, the adapter comes from the actor.
            ("actor_rollout_ref.rollout.load_format", "safetensors"),
        ]
        if init and init["kind"] == "lora":
            pairs.append(("actor_rollout_ref.model.lora_adapter_path", init["path"]))
    # Ray workers (where the reward function and the file logger run) get these whether Ray inherits our environment
    # (a local cluster) or not (`ray job submit` to a running one).
    worker_env = {
        "VERL_FILE_LOGGER_PATH": str(output / METRICS_FILE),
        # recipes/reward/looptool_reward.py asks the reward server for this mode's verdicts.
        "LOOPTOOL_REWARD_MODE": spec["reward"]["mode"],
    }
    if reward_url:
        worker_env["LOOPTOOL_REWARD_URL"] = reward_url
    for name, value in worker_env.items():
        pairs.append((f"+ray_kwargs.ray_init.runtime_env.env_vars.{name}", value))
    return [f"{key}={hydra_value(value)}" for key, value in pairs]


def main(argv: list[str]) -> int:
    args = argv[1:]
    output_dir_only = bool(args) and args[0] == "--output-dir"
    if output_dir_only:
        args = args[1:]
    if len(args) != 1:
        print("usage: overrides.py [--output-dir] <spec.json>", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args[0])
        if output_dir_only:
            print(spec["outputDir"])
            return 0
        cluster = cluster_from_env(dict(os.environ))
        check_batches(spec, cluster)
        overrides = build_overrides(spec, cluster, os.environ.get("LOOPTOOL_REWARD_URL") or None)
    except SpecError as error:
        print(f"verl-grpo: {error}", file=sys.stderr)
        return 1
    print("\n".join(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
