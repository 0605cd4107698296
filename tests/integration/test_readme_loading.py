"""The README's verify-as-you-load example runs as written, on a tiny model made here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import omsign
from helpers.fixtures import REPO, KeyPair, need_module

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "model", "is", "signed"]
# llama.cpp stands for any loader that takes a path; gguf's own reader is one.
PRELUDE = """
from gguf import GGUFReader
def Llama(model_path):
    return GGUFReader(model_path)
"""
CHECK = """
import jax
print(type(model).__name__, tok("the model is signed")["input_ids"])
print(sorted(state) == sorted(arrays), all(isinstance(a, jax.Array) for a in params.values()))
print(list(some), [t.name for t in llm.tensors])
"""


def _example() -> str:
    section = (REPO / "README.md").read_text().split("\n## Verify as you load\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the section has a Python example"
    return found.group(1)


def _my_model(folder: Path) -> None:
    """A tiny BERT (one safetensors file and a one-shard index), its tokenizer, a GGUF."""
    torch, transformers = need_module("torch"), need_module("transformers")
    gguf = need_module("gguf")
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "np") as f:
        names = list(f.keys())
    index = {"metadata": {}, "weight_map": dict.fromkeys(names, "model.safetensors")}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    writer = gguf.GGUFWriter(str(folder / "model.Q4_K_M.gguf"), "llama")
    writer.add_tensor("token_embd.weight", np.arange(16, dtype=np.float32).reshape(2, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_the_verify_as_you_load_example_runs(tmp_path: Path, p256: KeyPair) -> None:
    need_module("jax")
    _my_model(tmp_path / "my-model")
    shutil.copy(p256.public, tmp_path / "public.pem")
    omsign.sign(tmp_path / "my-model", key=p256.private)
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + _example() + CHECK],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-3:] == [
        "BertModel [2, 5, 6, 7, 8, 3]",
        "True True",
        "['pooler.dense.weight'] ['token_embd.weight']",
    ]
