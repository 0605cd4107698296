"""Signing with an EC private key kept on a PKCS#11 token (smart card, HSM, SoftHSM).

:func:`load_signing_key` takes an RFC 7512 URI such as
``pkcs11:token=ci;object=model-key?module-name=softhsm2&pin-source=/run/pin``,
opens the module, picks the one token and the one private key the URI names,
logs in and returns a :class:`~omsign.backends.SigningKey`. Data is hashed
locally with the curve's hash and the token signs the digest (``CKM_ECDSA``).

The PIN comes from ``pin-source`` (a file), else ``pin-value`` (which logs a
warning, as it ends up in shell history), else ``OMSIGN_PKCS11_PIN``, else the
password source (a prompt); see :func:`resolve_pin`.
PyKCS11 is optional: ``pip install 'omsign[pkcs11]'``.

The package is split by concern: ``_uri`` (URI parsing and the PIN),
``_session`` (module search, token selection, session and login) and ``_key``
(the signing key and public key export).
"""

from __future__ import annotations

from omsign.backends.pkcs11._key import (
    Pkcs11SigningKey,
    export_public_key_pem,
    load_signing_key,
)
from omsign.backends.pkcs11._session import find_module, module_search_dirs, select_slot
from omsign.backends.pkcs11._uri import (
    MODULE_ENV,
    PIN_ENV,
    Pkcs11Uri,
    parse_pkcs11_uri,
    resolve_pin,
)

__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11SigningKey",
    "Pkcs11Uri",
    "export_public_key_pem",
    "find_module",
    "load_signing_key",
    "module_search_dirs",
    "parse_pkcs11_uri",
    "resolve_pin",
    "select_slot",
]
