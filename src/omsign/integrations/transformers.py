"""Hugging Face transformers models and tokenizers, built only from verified bytes.

>>> from omsign.integrations.transformers import from_pretrained, tokenizer
>>> model = from_pretrained("my-model", key="public.pem")            # doctest: +SKIP
>>> tok = tokenizer("my-model", key="public.pem")                    # doctest: +SKIP

The model is verified under the trust given (the keywords of :func:`omsign.verify`:
``key``, ``cert_chain``, ``identity`` and ``issuer``..., or ``policy``), then:

- configuration, tokenizer and generation files are copied from verified reads into a
  private folder (mode 0700, removed afterwards) that transformers reads instead of the
  model folder;
- weights (``model.safetensors``, or the shards a verified
  ``model.safetensors.index.json`` names) are read tensor by tensor from verified bytes
  into a state dict before the model is built, so a tampered weight raises
  :class:`~omsign.errors.IntegrityError` before any tensor reaches the model;
- pickle weights (``pytorch_model.bin``) are refused unless ``allow_pickle=True``, and
  then loaded with ``torch.load(weights_only=True)`` from verified bytes.

By default only the signature is checked up front and every file is checked as it is
read (one pass; files that are not used are not read). ``verify_content=True`` checks
every signed file first, as ``omsign verify`` does. Other keywords go to transformers.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omsign.errors import BackendUnavailableError, ModelError, UnsafeFormatError
from omsign.loading import VerifiedModel

__all__ = ["from_pretrained", "tokenizer"]

# Weights and other large or executable payloads: never copied into the private folder.
_WEIGHT_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx",
    ".ot", ".pkl", ".pickle", ".npy", ".npz", ".tflite", ".mlmodel", ".joblib",
)  # fmt: skip
_TRUST_EXTRA = frozenset(
    {"policy", "signature", "scope", "runtime", "require_attestations", "require_scan"}
)


def _trust_names() -> frozenset[str]:
    from omsign._keywords import ScopeKeywords, TrustOptions

    return (
        frozenset(TrustOptions.__annotations__)
        | frozenset(ScopeKeywords.__annotations__)
        | _TRUST_EXTRA
    )


def _verified(model: Any, verify_content: bool, kwargs: dict[str, Any]) -> VerifiedModel:
    """The verified model; takes the trust keywords out of ``kwargs``."""
    names = _trust_names()
    trust = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    if isinstance(model, VerifiedModel):
        if trust:
            raise TypeError(f"a VerifiedModel is verified already; got {', '.join(trust)}")
        return model
    from omsign.loading import open_verified

    return open_verified(model, verify_content=verify_content, **trust)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise BackendUnavailableError(
            "loading transformers models needs transformers and torch: "
            "pip install 'omsign[transformers]'"
        ) from None
    return transformers


@contextlib.contextmanager
def _private_copy(verified: VerifiedModel) -> Iterator[Path]:
    """A private folder holding verified copies of the model's small, non-weight files."""
    with tempfile.TemporaryDirectory(prefix="omsign-") as folder:
        root = Path(folder)
        for name in verified.files:
            if name.lower().endswith(_WEIGHT_SUFFIXES) or name == ".":
                continue
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(target, flags, 0o600)
            with open(fd, "wb") as out:
                out.write(verified.read_bytes(name))
        yield root


def _state_dict(verified: VerifiedModel, allow_pickle: bool) -> dict[str, Any]:
    from omsign.integrations.safetensors import load, load_sharded

    files = set(verified.files)
    if "model.safetensors" in files:
        return load(verified, "model.safetensors", framework="torch")
    if "model.safetensors.index.json" in files:
        return load_sharded(verified, "model.safetensors.index.json", framework="torch")
    pickled = sorted(n for n in files if n.startswith("pytorch_model") and n.endswith(".bin"))
    if pickled and not allow_pickle and not verified.scan_required:
        raise UnsafeFormatError(
            f"{pickled[0]}: refused: the model's weights are a pickle (loading it can run "
            "code) and it has no safetensors weights",
            hint="pass {option} only for models whose source you trust",
            option="allow_pickle",
        )
    if not pickled:
        raise ModelError(f"{verified.result.model}: no safetensors or PyTorch weights signed")
    import torch

    state: dict[str, Any] = {}
    for name in pickled:
        # with require_scan, served only if a passing scan verdict of the model covers it
        data = verified.read_bytes(name, allow_pickle=allow_pickle)
        state.update(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    return state


def from_pretrained(
    model: Any,
    *,
    model_class: Any = None,
    allow_pickle: bool = False,
    verify_content: bool = False,
    **kwargs: Any,
) -> Any:
    """Verifies a model and builds it with transformers from verified bytes only.

    Args:
        model: a folder, ``hf://ORG/NAME[@REVISION]``, any model omsign reads, or a
            :class:`~omsign.loading.VerifiedModel`.
        model_class: the transformers class to build (default ``AutoModel``); an
            ``Auto*`` class is resolved from the verified configuration.
        allow_pickle: accept ``pytorch_model*.bin`` weights when there are no safetensors.
            With ``require_scan=True`` (a keyword of :func:`omsign.open_verified`) they
            are accepted only when a fresh passing scan attestation of the model covers
            them.
        verify_content: check every signed file before loading (default: as read).
        **kwargs: trust keywords of :func:`omsign.verify` (``key``, ``cert_chain``,
            ``identity``, ``issuer``, ``policy``, ``signature``...); the rest go to
            ``from_pretrained`` (``dtype``, ...).

    Returns:
        The model, in evaluation mode as transformers leaves it.

    Raises:
        omsign.errors.VerificationError: the signature or a file used does not verify.
        UnsafeFormatError: the weights are pickle-based and ``allow_pickle`` is false.
    """
    transformers = _transformers()
    verified = _verified(model, verify_content, kwargs)
    state = _state_dict(verified, allow_pickle)
    with _private_copy(verified) as folder:
        config = transformers.AutoConfig.from_pretrained(folder)
        cls = model_class or transformers.AutoModel
        mapping = getattr(cls, "_model_mapping", None)
        if mapping is not None:  # an Auto class: the concrete class for this configuration
            cls = mapping[type(config)]
        if "generation_config.json" in verified.files and cls.can_generate():
            # as transformers reads it beside the weights; with no path given it would
            # derive one from the configuration instead
            kwargs.setdefault(
                "generation_config", transformers.GenerationConfig.from_pretrained(folder)
            )
    return cls.from_pretrained(None, config=config, state_dict=state, **kwargs)


def tokenizer(
    model: Any, *, tokenizer_class: Any = None, verify_content: bool = False, **kwargs: Any
) -> Any:
    """Verifies a model and loads its tokenizer from verified copies of its files.

    Args:
        model: as for :func:`from_pretrained`.
        tokenizer_class: the class to load (default ``AutoTokenizer``).
        verify_content: check every signed file before loading (default: as read).
        **kwargs: trust keywords as for :func:`from_pretrained`; the rest go to
            transformers.
    """
    transformers = _transformers()
    verified = _verified(model, verify_content, kwargs)
    cls = tokenizer_class or transformers.AutoTokenizer
    with _private_copy(verified) as folder:
        return cls.from_pretrained(folder, **kwargs)
