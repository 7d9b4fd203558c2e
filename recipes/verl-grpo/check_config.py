#!/usr/bin/env python3
"""Checks Hydra overrides against the installed verl, as `verl.trainer.main_ppo` would before it starts anything.

    check_config.py <overrides.txt | -> [more.txt ...]     one override per line (overrides.py's output)

Composes verl's own `ppo_trainer` config from the installed package's `trainer/config` with each file's overrides,
then runs the validation main_ppo runs first (`verl.utils.config.validate_config`, with verl's own
`need_reference_policy` and `need_critic`). The GPU count it validates against is the config's
(`trainer.n_gpus_per_node` x `trainer.nnodes`), so no GPU is needed. Prints one JSON line per file, `{file, ok,
config}` or `{file, ok: false, error}`, and exits 0 when every file passed, 1 otherwise (verl's complaint on stderr).
Several files share one start-up (importing verl takes seconds).
Needs verl and its imports (recipes/requirements/verl.txt); vLLM is optional (see _lora_rank_check_without_vllm).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Literal, get_args

VLLM_UTILS = "verl.workers.rollout.vllm_rollout.utils"


def _lora_rank_check_without_vllm() -> bool:
    """For a LoRA config, validate_config calls `get_vllm_max_lora_rank` from a module that imports vLLM (a GPU
    package) at its top. Where vLLM is not installed, that one function is taken from verl's own source and run
    as it is: it already falls back to its own list of ranks when vLLM cannot be imported. Returns whether it did."""
    if importlib.util.find_spec("vllm") is not None:
        return False
    origin = importlib.util.find_spec("verl.workers.rollout").submodule_search_locations[0]
    source_path = Path(origin) / "vllm_rollout" / "utils.py"
    tree = ast.parse(source_path.read_text(encoding="utf-8"), filename=str(source_path))
    function = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "get_vllm_max_lora_rank"
    )
    namespace: dict = {"Literal": Literal, "get_args": get_args}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(source_path), "exec"), namespace)  # noqa: S102
    module = types.ModuleType(VLLM_UTILS)
    module.get_vllm_max_lora_rank = namespace["get_vllm_max_lora_rank"]
    # Already in sys.modules, it is found without importing its package (whose __init__ needs vLLM too).
    sys.modules[VLLM_UTILS] = module
    return True


def check(overrides: list[str]) -> dict:
    import verl
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    config_dir = Path(verl.__file__).resolve().parent / "trainer" / "config"
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            config = compose(config_name="ppo_trainer", overrides=overrides)
        # verl prints its verdict; stdout carries only the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            validate_config(
                config=config,
                use_reference_policy=need_reference_policy(config),
                use_critic=need_critic(config),
            )
    except Exception as error:  # noqa: BLE001 - whatever verl or Hydra raise is the answer
        return {"ok": False, "error": f"verl {verl.__version__} rejects the config: {type(error).__name__}: {error}"}
    return {"ok": True, "verl": verl.__version__, "config": OmegaConf.to_container(config, resolve=True)}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: check_config.py <overrides.txt | -> [more.txt ...]", file=sys.stderr)
        return 2
    lora_rank_from_source = _lora_rank_check_without_vllm()
    all_ok = True
    for name in argv[1:]:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        result = check([line for line in text.splitlines() if line.strip()])
        if not result["ok"]:
            all_ok = False
            print(f"{name}: {result['error']}", file=sys.stderr)
        print(json.dumps({"file": name, "loraRankCheckedWithoutVllm": lora_rank_from_source, **result}), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
