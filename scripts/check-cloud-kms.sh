#!/usr/bin/env bash
# End-to-end check of a cloud KMS key with real credentials (the tests cannot reach
# Google Cloud KMS or Azure Key Vault): exports the public key, signs a small model with
# the key, verifies it, and checks that a tampered model fails.
#
#   scripts/check-cloud-kms.sh gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K
#   scripts/check-cloud-kms.sh azurekms://VAULT.vault.azure.net/KEY
#   scripts/check-cloud-kms.sh awskms:///alias/NAME
#
# Credentials come from each SDK's usual chain (gcloud application-default login,
# az login or AZURE_* variables, AWS profile or variables). Needs the matching extra:
# pip install 'omsign[gcpkms]' / 'omsign[azurekms]' / 'omsign[awskms]'.
set -euo pipefail
uri=${1:?usage: $0 KEY-URI}
omsign=${OMSIGN:-$(command -v omsign || echo .venv/bin/omsign)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/model"
head -c 1048576 /dev/urandom >"$work/model/weights.bin"
echo '{"hidden_size": 64}' >"$work/model/config.json"
"$omsign" public-key --key "$uri" -o "$work/public.pem"
"$omsign" sign "$work/model" --key "$uri"
"$omsign" verify "$work/model" --key "$work/public.pem"
echo '{"hidden_size": 65}' >"$work/model/config.json"
if "$omsign" -q verify "$work/model" --key "$work/public.pem" 2>/dev/null; then
  echo "FAIL: a tampered model verified" >&2
  exit 1
fi
echo "OK: $uri signs, its signature verifies, and tampering is caught"
