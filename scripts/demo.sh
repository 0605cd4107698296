#!/usr/bin/env bash
# `make demo`: sign a small built-in example model with a fresh key, verify it, inspect the
# signature, then show verification catching a tampered file.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${OMSIGN_VENV:-.venv}
OMSIGN=$venv/bin/omsign
PY=$venv/bin/python
demo=.demo
rm -rf "$demo" && mkdir -p "$demo/model/tokenizer"

echo "== 1. an example model (Hugging Face-like layout) in $demo/model"
$PY - "$demo" <<'PY'
import json, os, sys
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

demo = Path(sys.argv[1])
m = demo / "model"
(m / "config.json").write_text(json.dumps({"architectures": ["Demo"], "hidden_size": 64}))
(m / "model.safetensors").write_bytes(os.urandom(4 << 20))
(m / "tokenizer" / "tokenizer.json").write_text(json.dumps({"vocab": {"a": 0, "b": 1}}))
(m / "README.md").write_text("# demo model\n")
key = ec.generate_private_key(ec.SECP256R1())
(demo / "private.pem").write_bytes(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
(demo / "public.pem").write_bytes(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
PY
find "$demo/model" -type f | sort

echo; echo "== 2. omsign sign $demo/model --key $demo/private.pem"
$OMSIGN sign "$demo/model" --key "$demo/private.pem"

echo; echo "== 3. omsign verify $demo/model --key $demo/public.pem"
$OMSIGN verify "$demo/model" --key "$demo/public.pem"

echo; echo "== 4. omsign inspect $demo/model/model.sig"
$OMSIGN inspect "$demo/model/model.sig"

echo; echo "== 5. tamper with config.json and verify again (expect exit code 1)"
echo '{"architectures": ["Evil"]}' > "$demo/model/config.json"
set +e
$OMSIGN verify "$demo/model" --key "$demo/public.pem"
code=$?
set -e
echo "exit code: $code"
[ "$code" -eq 1 ] || { echo "demo: expected verification to fail with exit code 1" >&2; exit 1; }
echo; echo "demo finished: signing, verification and tamper detection all worked."
