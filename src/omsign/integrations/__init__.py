"""Verified loading where models are loaded: safetensors, transformers, GGUF.

Each integration reads a model only through :func:`omsign.open_verified`, so every
byte a framework sees was hashed and compared with the signature as it was read (one
pass: verification and loading share the read). Pickle-based files are refused unless
the caller allows them (see :mod:`omsign.integrations.unsafe`).

- :func:`omsign.integrations.safetensors.load` / ``load_sharded``: tensors (numpy,
  torch, jax) from verified bytes, one tensor at a time.
- :func:`omsign.integrations.transformers.from_pretrained` and ``tokenizer``.
- :func:`omsign.integrations.gguf.verified_path`: a sealed in-memory file for loaders
  that want a path (llama.cpp).
"""
