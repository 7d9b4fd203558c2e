"""An OpenAI-compatible chat server over Hugging Face transformers, for running a real policy on CPU.

Why not `transformers serve`: 5.24 refuses `logprobs` and `top_logprobs` ("Receiving these raises an error",
UNUSED_CHAT_COMPLETION_FIELDS in transformers/cli/serving/chat_completion.py), and the probe's perplexity needs them;
its tool-call parsing covers a few model families only. This server loads exactly what the trainers write (a Hugging
Face folder, full weights or a PEFT adapter on its base), and answers the routes looptool uses, the way vLLM does:

  GET  /health                200 once the model is loaded (open, as in vLLM)
  GET  /v1/models             the served name
  POST /v1/chat/completions   messages, tools, temperature (0 = greedy), top_p, max_tokens, seed, logprobs,
                              top_logprobs, n = 1; `<tool_call>` blocks become `tool_calls` when the request had tools
                              (vLLM's hermes parser), else they stay in the content

With --api-key (or LOOPTOOL_SERVE_API_KEY) every /v1 route needs `Authorization: Bearer <key>` (401 otherwise), as
vLLM's --api-key. One request is generated at a time, on the threads torch is given (set OMP_NUM_THREADS=1 on small
machines). Run: python openai_server.py --model <hf dir> --served-model-name <name> --port 8000
"""
import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def load(model_dir):
    """Full weights, or a PEFT adapter folder (adapter_config.json) on the base model it names."""
    adapter_config = os.path.join(model_dir, "adapter_config.json")
    if os.path.exists(adapter_config):
        from peft import PeftModel

        with open(adapter_config) as f:
            base = json.load(f)["base_model_name_or_path"]
        tokenizer = AutoTokenizer.from_pretrained(model_dir if os.path.exists(os.path.join(model_dir, "tokenizer.json")) else base)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), model_dir)
        model = model.merge_and_unload()
    else:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    return tokenizer, model


def split_tool_calls(text):
    """vLLM's hermes parsing: `<tool_call>{json}</tool_call>` blocks become tool calls; unparseable blocks stay text."""
    calls = []
    for index, block in enumerate(TOOL_CALL.findall(text)):
        try:
            call = json.loads(block)
        except json.JSONDecodeError:
            return text, []
        if not isinstance(call, dict) or "name" not in call:
            return text, []
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:12]}_{index}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}), ensure_ascii=False)},
            }
        )
    content = TOOL_CALL.sub("", text).strip()
    return (content or None), calls


class Engine:
    def __init__(self, model_dir, served_name):
        self.served_name = served_name
        self.tokenizer, self.model = load(model_dir)
        self.lock = threading.Lock()

    def chat(self, body):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list")
        if body.get("n", 1) != 1:
            raise BadRequest("only n = 1 is supported")
        tools = body.get("tools") or None
        try:
            prompt_ids = self.tokenizer.apply_chat_template(
                messages, tools=tools, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        except Exception as err:  # a template that cannot render this conversation: the request's fault
            raise BadRequest(f"cannot apply the chat template: {err}") from err
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
        want_logprobs = bool(body.get("logprobs"))
        top_logprobs = int(body.get("top_logprobs") or 0)
        generation = {
            "max_new_tokens": max_tokens,
            "return_dict_in_generate": True,
            "output_logits": want_logprobs,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if temperature > 0:
            generation.update(do_sample=True, temperature=temperature, top_p=float(body.get("top_p") or 1.0), top_k=0)
        else:
            generation.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self.lock:
            if body.get("seed") is not None:
                torch.manual_seed(int(body["seed"]))
            with torch.no_grad():
                out = self.model.generate(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids), **generation)
        new_ids = out.sequences[0, prompt_ids.shape[1] :].tolist()
        eos = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        finished = bool(new_ids) and new_ids[-1] in eos
        text_ids = new_ids[:-1] if finished else new_ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        choice = {"index": 0, "finish_reason": "stop" if finished else "length"}
        if tools and body.get("tool_choice") != "none":
            content, calls = split_tool_calls(text)
        else:
            content, calls = text, []
        choice["message"] = {"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})}
        if calls:
            choice["finish_reason"] = "tool_calls"
        if want_logprobs:
            # The raw model distribution at each step (logits, not the sampler's), as vLLM reports by default.
            entries = []
            for step, token_id in enumerate(text_ids):
                logprobs = torch.log_softmax(out.logits[step][0].float(), dim=-1)
                entry = {
                    "token": self.tokenizer.decode([token_id]),
                    "logprob": float(logprobs[token_id]),
                    "bytes": list(self.tokenizer.decode([token_id]).encode("utf-8")),
                    "top_logprobs": [],
                }
                if top_logprobs:
                    values, ids = torch.topk(logprobs, top_logprobs)
                    entry["top_logprobs"] = [
                        {"token": self.tokenizer.decode([i]), "logprob": float(v)} for v, i in zip(values.tolist(), ids.tolist())
                    ]
                entries.append(entry)
            choice["logprobs"] = {"content": entries}
        else:
            choice["logprobs"] = None
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": int(prompt_ids.shape[1]),
                "completion_tokens": len(new_ids),
                "total_tokens": int(prompt_ids.shape[1]) + len(new_ids),
            },
        }


class BadRequest(Exception):
    pass


def make_handler(engine, api_key):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

        def send(self, status, payload):
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, message, kind):
            self.send(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

        def authorized(self):
            if not api_key or not self.path.startswith("/v1"):
                return True
            if self.headers.get("authorization") == f"Bearer {api_key}":
                return True
            self.send(401, {"error": "Unauthorized"})
            return False

        def do_GET(self):
            if self.path == "/health":
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if not self.authorized():
                return
            if self.path == "/v1/models":
                self.send(200, {"object": "list", "data": [{"id": engine.served_name, "object": "model", "owned_by": "looptool", "root": engine.served_name, "parent": None}]})
                return
            self.send(404, {"detail": "Not Found"})

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.authorized():
                return
            if self.path != "/v1/chat/completions":
                self.send(404, {"detail": "Not Found"})
                return
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                if body.get("model") not in (None, engine.served_name):
                    self.error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
                    return
                if body.get("stream"):
                    raise BadRequest("streaming is not supported")
                self.send(200, engine.chat(body))
            except (BadRequest, json.JSONDecodeError, ValueError, TypeError) as err:
                self.error(400, str(err), "BadRequestError")
            except Exception as err:  # noqa: BLE001 - a server error, reported as vLLM does
                self.error(500, f"{type(err).__name__}: {err}", "InternalServerError")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Hugging Face folder (full weights or a PEFT adapter)")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=os.environ.get("LOOPTOOL_SERVE_API_KEY"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    started = time.time()
    engine = Engine(args.model, args.served_model_name)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(engine, args.api_key))
    print(
        f"serving {args.model} as {args.served_model_name} on http://{args.host}:{server.server_address[1]}/v1 "
        f"(loaded in {time.time() - started:.1f} s)",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
