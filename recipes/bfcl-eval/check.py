"""BFCL's own AST checker on given outputs, for comparing the project's checker with it (test/e2e/bfcl-harness-agreement).

    python recipes/bfcl-eval/check.py <outputs.jsonl>

Each input line: {"key", "id", "category", "output"}, `output` in BFCL's decoded form ([{function: {param: value}}]).
The question and possible answer come from the installed package's data (bfcl_eval/data/). Each output line:
{"key", "valid", "error_type"}. Function names are checked as BFCL checks a prompting model's (dots kept).
"""

import json
import sys
import types
from dataclasses import dataclass

# The checker looks up `underscore_to_dot` in BFCL's model registry, whose module imports every vendor SDK (see run.py).
registry = types.ModuleType("bfcl_eval.constants.model_config")


@dataclass
class ModelConfig:
    underscore_to_dot: bool = False


registry.ModelConfig = ModelConfig
registry.MODEL_CONFIG_MAPPING = {"looptool-check": ModelConfig()}
sys.modules["bfcl_eval.constants.model_config"] = registry

from bfcl_eval.constants.enums import Language  # noqa: E402
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker  # noqa: E402
from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry  # noqa: E402


def main() -> int:
    items = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    questions: dict = {}
    answers: dict = {}
    for category in sorted({item["category"] for item in items}):
        # As the evaluation loads them: no language hint in the docs (eval_runner.evaluate_task).
        for entry in load_dataset_entry(category, include_prereq=False, include_language_specific_hint=False):
            questions[entry["id"]] = entry
        for entry in load_ground_truth_entry(category):
            answers[entry["id"]] = entry["ground_truth"]
    for item in items:
        question = questions[item["id"]]
        result = ast_checker(
            question["function"],
            item["output"],
            answers[item["id"]],
            Language.PYTHON,
            item["category"],
            "looptool-check",
        )
        sys.stdout.write(
            json.dumps({"key": item["key"], "valid": result["valid"], "error_type": result.get("error_type")}) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
