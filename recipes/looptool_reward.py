"""LoopTool's binary reward for verl (paper Eq. 1), without the official code's bugs (LOOPTOOL-METHOD.md §2.2).

r = 1 when the response's calls equal the label's as an order-insensitive multiset of {name, arguments}: duplicate
calls are counted (the official code collapsed them, so [A, A, B] matched [A, B, B]), argument dicts compare regardless
of key order, lists keep their order, booleans never equal numbers, and nothing is read from <think>. A text label
(no call) rewards a response with no <tool_call>. This mirrors core/checker/exact-match.ts, which the probe uses, so
reward and probe agree.
"""
import json
import re
from collections import Counter

CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)
THINK = re.compile(r"<think>.*?</think>", re.S)


def _freeze(value):
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", type(value).__name__, value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    return ("str", value)


def _calls(text):
    text = THINK.sub("", text)
    blocks = CALL.findall(text)
    if not blocks:
        return [] if "<tool_call>" not in text and "</tool_call>" not in text else None
    calls = []
    for block in blocks:
        try:
            call = json.loads(block)
        except json.JSONDecodeError:
            return None
        if not isinstance(call, dict) or not isinstance(call.get("arguments", {}), dict):
            return None
        calls.append(_freeze({"name": call.get("name"), "arguments": call.get("arguments", {})}))
    return calls


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    expected = _calls(ground_truth)
    predicted = _calls(solution_str)
    if expected is None or predicted is None:
        return 0.0
    return 1.0 if Counter(expected) == Counter(predicted) else 0.0
