"""transformers models and tokenizers built from verified bytes (tiny models made here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, need_module
from omsign.errors import IntegrityError, UnsafeFormatError

torch = need_module("torch")
transformers = need_module("transformers")
from omsign.integrations.transformers import from_pretrained, tokenizer  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "model", "is", "signed", "##s"]


def _tiny_bert(folder: Path, *, shard: str | None = None, pickle: bool = False) -> Path:
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(folder, **kwargs)
    if pickle:  # the older format: a pickled state dict instead of safetensors
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def _outputs(model: object) -> object:
    ids = torch.tensor([[2, 5, 6, 7, 8, 3]])
    with torch.no_grad():
        return model(ids).last_hidden_state  # type: ignore[operator]


@pytest.mark.parametrize("shard", [None, "20KB"])
def test_verified_model_equals_a_plain_load(
    tmp_path: Path, p256: KeyPair, shard: str | None
) -> None:
    folder = _tiny_bert(tmp_path / "bert", shard=shard)
    assert (folder / "model.safetensors.index.json").exists() == bool(shard)
    omsign.sign(folder, key=p256.private)
    plain = transformers.AutoModel.from_pretrained(folder).eval()
    verified = from_pretrained(folder, key=p256.public).eval()
    assert type(verified) is type(plain)
    assert torch.equal(_outputs(verified), _outputs(plain))


def test_model_class_is_honoured(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_bert(tmp_path / "bert")
    omsign.sign(folder, key=p256.private)
    model = from_pretrained(folder, key=p256.public, model_class=transformers.BertModel)
    assert isinstance(model, transformers.BertModel)


def _tiny_gpt2(folder: Path) -> Path:
    config = transformers.GPT2Config(
        vocab_size=len(VOCAB), n_positions=32, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=2, eos_token_id=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    # distinct from what the configuration alone gives (eos 3, no max_new_tokens)
    model.generation_config = transformers.GenerationConfig(max_new_tokens=7, eos_token_id=9)
    model.save_pretrained(folder)
    return folder


def test_generation_config_comes_from_the_verified_file(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_gpt2(tmp_path / "gpt2")
    assert json.loads((folder / "generation_config.json").read_text())["max_new_tokens"] == 7
    omsign.sign(folder, key=p256.private)
    causal = transformers.AutoModelForCausalLM
    plain = causal.from_pretrained(folder)
    verified = from_pretrained(folder, key=p256.public, model_class=causal)
    assert verified.generation_config.max_new_tokens == 7
    assert verified.generation_config.eos_token_id == 9
    assert verified.generation_config.to_dict() == plain.generation_config.to_dict()
    ids = torch.tensor([[2, 5, 6]])
    assert torch.equal(verified.generate(ids), plain.generate(ids))


def test_generation_config_changed_after_verification_fails(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_gpt2(tmp_path / "gpt2")
    omsign.sign(folder, key=p256.private)
    verified = omsign.open_verified(folder, key=p256.public)  # content checked here
    path = folder / "generation_config.json"
    path.write_text(path.read_text().replace('"max_new_tokens": 7', '"max_new_tokens": 9'))
    with pytest.raises(IntegrityError, match=r"generation_config\.json"):
        from_pretrained(verified, model_class=transformers.AutoModelForCausalLM)


def test_tokenizer_from_verified_copies(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_bert(tmp_path / "bert")
    omsign.sign(folder, key=p256.private)
    tok = tokenizer(folder, key=p256.public)
    assert tok("the model is signed")["input_ids"] == [2, 5, 6, 7, 8, 3]
    (folder / "vocab.txt").write_text("\n".join(reversed(VOCAB)) + "\n")
    with pytest.raises(IntegrityError):
        tokenizer(folder, key=p256.public)


@pytest.mark.parametrize("shard", [None, "20KB"])
def test_weight_changed_after_verification_fails_before_the_model_is_built(
    tmp_path: Path, p256: KeyPair, shard: str | None
) -> None:
    folder = _tiny_bert(tmp_path / "bert", shard=shard)
    omsign.sign(folder, key=p256.private)
    verified = omsign.open_verified(folder, key=p256.public)  # content checked here
    weights = sorted(folder.glob("*.safetensors"))[-1]
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # same size, same inode: one weight byte differs
    with open(weights, "r+b") as f:
        f.write(data)
    with pytest.raises(IntegrityError, match="do not match the signature"):
        from_pretrained(verified)


def test_swapped_shard_index_fails(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_bert(tmp_path / "bert", shard="20KB")
    omsign.sign(folder, key=p256.private)
    index = folder / "model.safetensors.index.json"
    doc = json.loads(index.read_text())
    names = sorted(set(doc["weight_map"].values()))
    doc["weight_map"] = dict.fromkeys(doc["weight_map"], names[0])  # every tensor in one shard
    index.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=r"model\.safetensors\.index\.json"):
        from_pretrained(folder, key=p256.public)


def test_pickle_weights_are_refused_unless_allowed(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_bert(tmp_path / "bert", pickle=True)
    assert (folder / "pytorch_model.bin").exists()
    omsign.sign(folder, key=p256.private)
    with pytest.raises(UnsafeFormatError, match=r"pytorch_model\.bin"):
        from_pretrained(folder, key=p256.public)
    plain = transformers.AutoModel.from_pretrained(folder).eval()
    allowed = from_pretrained(folder, key=p256.public, allow_pickle=True).eval()
    assert torch.equal(_outputs(allowed), _outputs(plain))


def test_pickle_weights_load_when_a_passing_scan_covers_them(tmp_path: Path, p256: KeyPair) -> None:
    from helpers.pickles import need_scanner
    from omsign.scanners import scanner_predicate

    need_scanner("picklescan")
    folder = _tiny_bert(tmp_path / "bert", pickle=True)
    omsign.sign(folder, key=p256.private)
    with pytest.raises(UnsafeFormatError, match="no fresh passing scan attestation"):
        from_pretrained(folder, key=p256.public, require_scan=True)
    omsign.attest(
        folder, key=p256.private, predicate_type="scan", predicate=scanner_predicate("picklescan")
    )
    plain = transformers.AutoModel.from_pretrained(folder).eval()
    scanned = from_pretrained(folder, key=p256.public, require_scan=True).eval()
    assert torch.equal(_outputs(scanned), _outputs(plain))


def test_an_added_pickle_is_refused_by_verified_reads(tmp_path: Path, p256: KeyPair) -> None:
    folder = _tiny_bert(tmp_path / "bert")
    torch.save({"w": torch.zeros(2)}, folder / "extra.bin")
    omsign.sign(folder, key=p256.private)
    verified = omsign.open_verified(folder, key=p256.public)
    with pytest.raises(UnsafeFormatError, match=r"extra\.bin"), verified.open("extra.bin") as f:
        f.read()
    with verified.open("extra.bin", allow_pickle=True) as f:
        assert f.read(2) == b"PK"
