"""The GRPO reward for verl and TRL, decided by looptool's checker through `looptool reward serve`.

These functions only carry completions and labels to the reward server and its scores back: every verdict comes from
core/checker, the checker the loop's probe and evaluation use, so training optimises exactly what the loop measures
(paper Eq. 1: 1 when the reply's calls are right, else 0). Standard library only, so any trainer's Python can import it.

Environment:
  LOOPTOOL_REWARD_URL   the server's base URL (required; recipes/reward/with-reward-server.sh sets it)
  LOOPTOOL_REWARD_MODE  `exact` or `bfcl_ast`; unset: the server's own mode

Entry points:
  compute_score        verl's naive reward manager (verl 0.9: `reward.custom_reward_function.name=compute_score`,
                       `reward.reward_manager.name=naive`; what recipes/verl-grpo uses)
  compute_score_batch  verl's batch reward manager, in verl versions that have one (0.9 has none)
  trl_reward           a TRL GRPOTrainer reward function (`reward_funcs=[trl_reward]`)
"""
import json
import os
import time
import urllib.error
import urllib.request

URL_ENV = "LOOPTOOL_REWARD_URL"
MODE_ENV = "LOOPTOOL_REWARD_MODE"
# core/reward.ts REWARD_SCORE_PATH.
SCORE_PATH = "/v1/score"
# Items per request: a large GRPO batch (prompts x G) goes in a few requests of bounded size.
CHUNK_SIZE = 2048
# The server may still be starting (a first run builds dist/) when the first rewards are due: retry a refused
# connection for ~30 s before giving up.
CONNECT_ATTEMPTS = 60
CONNECT_DELAY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 600
# The server runs next to the trainer: a cluster's HTTP(S)_PROXY must not route reward calls away from it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RewardServerError(RuntimeError):
    """The reward server could not be reached, or refused a batch (its message names the field at fault)."""


def _endpoint():
    url = os.environ.get(URL_ENV)
    if not url:
        raise RewardServerError(
            f"{URL_ENV} is not set: start `looptool reward serve` (or run the trainer under "
            "recipes/reward/with-reward-server.sh) and set it to the server's URL"
        )
    return url.rstrip("/") + SCORE_PATH


def _post(endpoint, payload):
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(endpoint, data=body, headers={"content-type": "application/json"}, method="POST")
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            with _OPENER.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                pass
            raise RewardServerError(f"reward server at {endpoint} answered {err.code}: {detail}") from None
        except urllib.error.URLError as err:
            if not isinstance(err.reason, ConnectionRefusedError) or attempt == CONNECT_ATTEMPTS:
                raise RewardServerError(f"cannot reach the reward server at {endpoint}: {err.reason}") from None
            time.sleep(CONNECT_DELAY_SECONDS)
    raise AssertionError("unreachable")


def score_items(items):
    """Scores `{completion, ground_truth, tools?}` items (core/reward.ts RewardItem); returns one float each, in order."""
    endpoint = _endpoint()
    mode = os.environ.get(MODE_ENV)
    scores = []
    for start in range(0, len(items), CHUNK_SIZE):
        payload = {"items": items[start : start + CHUNK_SIZE]}
        if mode:
            payload["mode"] = mode
        scores.extend(float(score) for score in _post(endpoint, payload)["scores"])
    return scores


def _item(completion, ground_truth, tools):
    item = {"completion": completion, "ground_truth": ground_truth}
    if tools is not None:
        item["tools"] = tools
    return item


def _tools_of(extra_info):
    return extra_info.get("tools") if isinstance(extra_info, dict) else None


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's naive reward manager: one reply, its label, and the row's `extra_info` (whose `tools` the export sets)."""
    return score_items([_item(solution_str, ground_truth, _tools_of(extra_info))])[0]


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    """verl's batch reward manager: the whole step's replies at once; returns a list of floats."""
    solution_strs = list(solution_strs)
    ground_truths = list(ground_truths)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    if not len(solution_strs) == len(ground_truths) == len(extra_infos):
        raise ValueError(
            f"solution_strs ({len(solution_strs)}), ground_truths ({len(ground_truths)}) and extra_infos "
            f"({len(extra_infos)}) must have the same length"
        )
    return score_items(
        [_item(s, g, _tools_of(e)) for s, g, e in zip(solution_strs, ground_truths, extra_infos)]
    )


def _reply(completion):
    """A TRL completion as the server reads it: the text, or the first assistant message of a conversational one
    (the turn the label describes; later turns, if a rollout ran tools, are not what the label judges)."""
    if isinstance(completion, str):
        return completion
    for message in completion:
        if message.get("role", "assistant") == "assistant":
            return {key: message[key] for key in ("content", "tool_calls") if message.get(key) is not None}
    return ""


def trl_reward(completions, ground_truth, tools=None, **kwargs):
    """A TRL GRPOTrainer reward function: `ground_truth` and `tools` are the dataset's columns of those names."""
    if len(completions) != len(ground_truth):
        raise ValueError(f"completions ({len(completions)}) and ground_truth ({len(ground_truth)}) differ in length")
    tools = list(tools) if tools is not None else [None] * len(completions)
    return score_items([_item(_reply(c), g, t) for c, g, t in zip(completions, ground_truth, tools)])
