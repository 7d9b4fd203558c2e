"""BFCL's own scoring of a predictions file, one process, for timing against `looptool score` (bench/score.ts).

    python recipes/bfcl-eval/score.py --category C --questions Q.jsonl [--answers A.jsonl] --predictions P.jsonl --out O.jsonl

Reads the question, possible-answer and predictions files (BFCL's JSONL: {"id", "question", "function"},
{"id", "ground_truth"} and {"id", "result"} as `bfcl generate` writes them) with BFCL's `load_file`, then scores every
prediction with the per-entry functions of BFCL's `eval_runner` (decode, output-format check, `ast_checker`; relevance
and irrelevance on whether anything decodes), as `ast_file_runner` / `relevance_file_runner` do. Results are decoded as
a prompting model's (`default_decode_ast_prompting`, Python calls). Writes one line per prediction, in order:
{"id", "valid", "error_type"}. No score file, no leaderboard.
"""

import argparse
import json
import sys
import types
from dataclasses import dataclass

# The checker looks up `underscore_to_dot` in BFCL's model registry, whose module imports every vendor SDK (see run.py).
registry = types.ModuleType("bfcl_eval.constants.model_config")


@dataclass
class ModelConfig:
    underscore_to_dot: bool = False


MODEL_NAME = "looptool-check"
registry.ModelConfig = ModelConfig
registry.MODEL_CONFIG_MAPPING = {MODEL_NAME: ModelConfig()}
sys.modules["bfcl_eval.constants.model_config"] = registry

from bfcl_eval.constants.enums import Language, ReturnFormat  # noqa: E402
from bfcl_eval.eval_checker.eval_runner import (  # noqa: E402
    _evaluate_single_ast_entry,
    _evaluate_single_relevance_entry,
)
from bfcl_eval.model_handler.utils import default_decode_ast_prompting  # noqa: E402
from bfcl_eval.utils import load_file  # noqa: E402


class PromptingHandler:
    """The one handler method the evaluation calls: decoding as BFCL's prompting (non-FC) handlers do."""

    def decode_ast(self, result, language, has_tool_call_tag):
        return default_decode_ast_prompting(result, language, has_tool_call_tag)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--answers")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    questions = {entry["id"]: entry for entry in load_file(args.questions, use_lock=False)}
    answers = {}
    if args.answers:
        answers = {entry["id"]: entry["ground_truth"] for entry in load_file(args.answers, use_lock=False)}
    predictions = load_file(args.predictions, use_lock=False)

    handler = PromptingHandler()
    category = args.category
    relevance = "relevance" in category  # irrelevance and relevance alike, as eval_runner's is_relevance_or_irrelevance
    with open(args.out, "w") as out:
        for prediction in predictions:
            index = prediction["id"]
            if relevance:
                verdict = _evaluate_single_relevance_entry(
                    handler, index, prediction["result"], questions[index], MODEL_NAME, category
                )
            else:
                verdict = _evaluate_single_ast_entry(
                    handler,
                    index,
                    prediction["result"],
                    answers[index],
                    questions[index],
                    MODEL_NAME,
                    category,
                    language=Language.PYTHON,
                    return_format=ReturnFormat.PYTHON,
                    has_tool_call_tag=False,
                )
            out.write(json.dumps({"id": index, "valid": verdict["valid"], "error_type": verdict.get("error_type")}))
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
