"""BFCL's own harness (PyPI bfcl-eval, recipes/requirements/bfcl.txt) against a deployed policy's OpenAI endpoint.

    python recipes/bfcl-eval/run.py <spec.json>

The spec (written by activities/evaluation/bfcl-harness.ts) names the policy's OpenAI base URLs and served model, the
BFCL categories, how many questions per category (the first N in BFCL's order; null: all), the request threads, the
reply budget, and the work folder. The API key comes from OPENAI_API_KEY, never from the spec.

Generation is BFCL's own (`_llm_response_generation.collect_test_cases` / `generate_results`) with BFCL's
OpenAI-compatible function-calling handler (`OpenAICompletionsHandler`, `is_fc_model`, `underscore_to_dot`): the tools
go in the request's `tools`, calls come back as `tool_calls`, multi-turn questions are played against BFCL's executable
backends between steps, exactly as `bfcl generate` runs an OpenAI-compatible model. This is what a user with vLLM
(`--enable-auto-tool-choice --tool-call-parser hermes`) runs. Scoring is BFCL's own (`eval_runner.evaluate_task`), per
category, with `--partial-eval` semantics (only the generated questions count).

Why the model registry is replaced: `bfcl_eval.constants.model_config` imports every vendor SDK BFCL supports
(anthropic, cohere, mistralai, google-genai, boto3, qwen-agent, ...) and its leaderboard dependencies pull
sentence-transformers and torch. The environment installs the package with --no-deps plus what generation, the AST
checker and the multi-turn backends import, and this runner puts a registry holding only our model in its place
before anything imports it.

Resumable: BFCL skips questions whose result is already in the work folder, so a retried run continues. A request
that failed because the server was unreachable or overloaded is not a model answer: its result is removed again and
the runner exits with code 75 (temporary failure), so the caller retries later instead of scoring it as wrong. A
request the server refused as unauthorised or for an unknown model exits with code 3.

stdout: one JSON object per line: {"event": "progress", "done", "total"} while generating, then
{"event": "result", "categories": [{"category", "correct", "total", "accuracy"}]}.
"""

import copy
import json
import time
import os
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

EXIT_TEMPORARY = 75
EXIT_REFUSED = 3
REGISTRY_NAME = "looptool-policy"  # no "_" or "/": BFCL maps result folder names back to registry names by them


# BFCL prints its progress and every multi-turn step to stdout: events get the real stdout, everything else stderr.
EVENTS = os.fdopen(os.dup(1), "w")
sys.stdout = sys.stderr


def emit(event: dict) -> None:
    EVENTS.write(json.dumps(event) + "\n")
    EVENTS.flush()


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    work_dir = Path(spec["workDir"]).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    # BFCL reads its project root (results, scores, lock files) when its config module is first imported.
    os.environ["BFCL_PROJECT_ROOT"] = str(work_dir)
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")

    @dataclass
    class ModelConfig:
        model_name: str
        display_name: str
        url: str
        org: str
        license: str
        model_handler: type
        input_price: Optional[float] = None
        output_price: Optional[float] = None
        is_fc_model: bool = True
        underscore_to_dot: bool = False

    registry = types.ModuleType("bfcl_eval.constants.model_config")
    registry.ModelConfig = ModelConfig
    registry.MODEL_CONFIG_MAPPING = {}
    sys.modules["bfcl_eval.constants.model_config"] = registry

    import openai
    from bfcl_eval import _llm_response_generation as generation
    from bfcl_eval.eval_checker import eval_runner
    from bfcl_eval.model_handler.api_inference.openai_completion import OpenAICompletionsHandler
    from bfcl_eval.utils import (
        get_directory_structure_by_category,
        get_file_name_by_category,
        load_dataset_entry,
        parse_test_category_argument,
    )

    base_urls: list = spec["baseUrls"]
    transient: dict = {}
    refused: list = []
    progress = {"done": 0, "total": 0}
    lock = threading.Lock()
    current = threading.local()

    class LooptoolHandler(OpenAICompletionsHandler):
        """BFCL's OpenAI-compatible FC handler, spread over the policy's servers, with the reply budget."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.clients = [
                openai.OpenAI(base_url=url, api_key=os.environ["OPENAI_API_KEY"], timeout=spec["requestTimeoutSeconds"], max_retries=2)
                for url in base_urls
            ]
            self.next_client = 0

        def inference(self, test_entry, include_input_log, exclude_state_log):
            current.id = test_entry["id"]
            try:
                return super().inference(test_entry, include_input_log, exclude_state_log)
            finally:
                with lock:
                    progress["done"] += 1
                    emit({"event": "progress", **progress})

        def generate_with_backoff(self, **kwargs):
            with lock:
                client = self.clients[self.next_client % len(self.clients)]
                self.next_client += 1
            kwargs.pop("store", None)  # an OpenAI-platform flag that other servers need not know
            kwargs["max_tokens"] = spec["maxTokens"]
            start = time.time()
            try:
                response = client.chat.completions.create(**kwargs)
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as err:
                with lock:
                    transient[current.id] = f"{type(err).__name__}: {err}"
                raise
            except openai.APIStatusError as err:
                if err.status_code in (401, 403, 404):
                    with lock:
                        refused.append(f"HTTP {err.status_code}: {err.message}")
                raise
            return response, time.time() - start

    registry.MODEL_CONFIG_MAPPING[REGISTRY_NAME] = ModelConfig(
        model_name=spec["model"],
        display_name=spec["model"],
        url="",
        org="",
        license="",
        model_handler=LooptoolHandler,
        is_fc_model=True,
        underscore_to_dot=True,
    )

    categories = parse_test_category_argument(spec["categories"])
    ordered = [c for c in spec["categories"] if c in categories] + sorted(set(categories) - set(spec["categories"]))
    limit = spec.get("maxPerCategory")
    entries = []
    for category in ordered:
        chosen = load_dataset_entry(category)
        entries.extend(chosen if limit is None else chosen[:limit])
    result_dir = work_dir / "result"
    score_dir = work_dir / "score"
    args = types.SimpleNamespace(
        model=[REGISTRY_NAME],
        test_category=ordered,
        temperature=0.0,  # greedy, as the probe and the built-in evaluation (BFCL's CLI default is 0.001)
        include_input_log=False,
        exclude_state_log=True,
        num_threads=spec["threads"],
        result_dir=result_dir,
        allow_overwrite=False,
        run_ids=False,
    )
    order = {entry["id"]: index for index, entry in enumerate(entries)}
    todo = generation.collect_test_cases(args, REGISTRY_NAME, ordered, copy.deepcopy(entries))
    progress["total"] = len(todo)
    emit({"event": "progress", **progress})
    if todo:
        generation.generate_results(args, REGISTRY_NAME, todo)

    def result_file(category: str) -> Path:
        return (
            result_dir
            / REGISTRY_NAME
            / get_directory_structure_by_category(category)
            / get_file_name_by_category(category, is_result_file=True)
        )

    if transient or refused:
        # Not answers: take them out so the next run asks again.
        for category in ordered:
            path = result_file(category)
            if not path.exists():
                continue
            kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["id"] not in transient]
            path.write_text("".join(line + "\n" for line in kept))
        if refused:
            print(f"the policy server refused the requests: {refused[0]}", file=sys.stderr)
            return EXIT_REFUSED
        first = next(iter(transient.items()))
        print(
            f"{len(transient)} questions got no answer (the server was unreachable or overloaded), e.g. {first[0]}: {first[1]}",
            file=sys.stderr,
        )
        return EXIT_TEMPORARY

    handler = eval_runner.get_handler(REGISTRY_NAME)
    table: dict = {}
    results = []
    for category in ordered:
        path = result_file(category)
        model_result = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        # In BFCL's file order, as its scorer pairs results with questions; a result folder may hold answers to more
        # questions than this run asks (a larger limit before), which do not count now.
        model_result = sorted((r for r in model_result if r["id"] in order), key=lambda r: order[r["id"]])
        if not model_result:
            results.append({"category": category, "correct": 0, "total": 0, "accuracy": 0.0})
            continue
        eval_runner.evaluate_task(category, result_dir, score_dir, model_result, REGISTRY_NAME, handler, table, allow_missing=True)
        score_file = score_dir / REGISTRY_NAME / get_directory_structure_by_category(category) / get_file_name_by_category(category, is_score_file=True)
        header = json.loads(score_file.read_text().splitlines()[0])
        results.append(
            {
                "category": category,
                "correct": int(header["correct_count"]),
                "total": int(header["total_count"]),
                "accuracy": float(header["accuracy"]),
            }
        )
    emit({"event": "result", "categories": results})
    return 0

if __name__ == "__main__":
    sys.exit(main())
