"""Real SoftHSM2 tokens for the PKCS#11 tests, and certificates for their keys.

The session fixture ``softhsm_token`` writes a ``softhsm2.conf`` in a temporary
directory, points ``SOFTHSM2_CONF`` at it for the whole session (CLI subprocesses
inherit it), initialises two tokens with ``softhsm2-util`` and generates keys on
them with PyKCS11:

* ``omsign-test``: EC keys ``p256`` (id 01), ``p384`` (id 02), ``p521`` (id 03);
  two keys both labelled ``dup`` (ids 10, 11); an RSA key ``rsa`` (id 20); an EC
  key ``nosign`` (id 21) with CKA_SIGN false; an EC key ``nopub`` (id 22) whose
  public key object was deleted; an EC key ``certonly`` (id 23) whose public key
  object was replaced by an X.509 certificate object; an EC key ``always`` (id 24)
  with CKA_ALWAYS_AUTHENTICATE, which needs a context-specific login per signature.
* ``omsign-other``: an EC key ``p256`` (id 01), so selection by token matters.

Both tokens have user PIN :data:`USER_PIN`. Bring the fixture in with
``pytest_plugins = ["services.softhsm"]`` (``tests/`` on ``sys.path``).
When SoftHSM2 is missing the fixture skips, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.pki import Issued, certify_public_key, days, make_ca, now, write_certs

USER_PIN = "246810"
SO_PIN = "13579111"
TOKEN_LABEL = "omsign-test"
OTHER_LABEL = "omsign-other"
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)
EC_PARAMS = {
    "P-256": bytes.fromhex("06082a8648ce3d030107"),
    "P-384": bytes.fromhex("06052b81040022"),
    "P-521": bytes.fromhex("06052b81040023"),
}


@dataclass(frozen=True)
class TokenInfo:
    """One initialised token: its label, serial number and slot id."""

    label: str
    serial: str
    slot_id: int


@dataclass(frozen=True)
class SoftHsm:
    """The SoftHSM2 set-up of a test session.

    Attributes:
        module: path of ``libsofthsm2.so``.
        conf: the ``softhsm2.conf`` that ``SOFTHSM2_CONF`` points to.
        token: the main token (``omsign-test``).
        other: the second token (``omsign-other``).
        pin_file: a file holding :data:`USER_PIN` and a newline.
        directory: a scratch directory of the session.
        user_pin: the user PIN of both tokens.
    """

    module: str
    conf: Path
    token: TokenInfo
    other: TokenInfo
    pin_file: Path
    directory: Path
    user_pin: str = USER_PIN

    def uri(
        self,
        path: str = "object=p256",
        *,
        token: str | None = TOKEN_LABEL,
        query: str | None = None,
    ) -> str:
        """A ``pkcs11:`` URI for the main token with the module and the PIN file.

        Args:
            path: the key-selecting path attributes, e.g. ``object=p384`` or ``id=%02``.
            token: the token label to add (None adds none).
            query: the query part to use instead of module-path and pin-source.
        """
        parts = [f"token={quote(token)}"] if token is not None else []
        parts += [path] if path else []
        if query is None:
            query = f"module-path={self.module}&pin-source={self.pin_file}"
        return "pkcs11:" + ";".join(parts) + (f"?{query}" if query else "")


def find_softhsm_module() -> str | None:
    """Returns the path of the SoftHSM2 PKCS#11 module, or None if it is not installed."""
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def _require_softhsm() -> str:
    module = find_softhsm_module()
    if module is not None and shutil.which("softhsm2-util"):
        return module
    reason = "SoftHSM2 is not installed (apt-get install softhsm2, or run make system)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _init_token(label: str) -> None:
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", label),
            *("--so-pin", SO_PIN, "--pin", USER_PIN),
        ],
        check=True,
        capture_output=True,
    )


def _ec_pair(
    p11: Any,
    session: Any,
    label: str,
    key_id: bytes,
    curve: str,
    sign: bool = True,
    always_authenticate: bool = False,
) -> tuple[Any, Any]:
    common = [(p11.CKA_TOKEN, p11.CK_TRUE), (p11.CKA_LABEL, label), (p11.CKA_ID, key_id)]
    public = [
        (p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
        (p11.CKA_KEY_TYPE, p11.CKK_EC),
        (p11.CKA_EC_PARAMS, EC_PARAMS[curve]),
        (p11.CKA_VERIFY, p11.CK_TRUE),
        *common,
    ]
    private = [
        (p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
        (p11.CKA_KEY_TYPE, p11.CKK_EC),
        (p11.CKA_PRIVATE, p11.CK_TRUE),
        (p11.CKA_SENSITIVE, p11.CK_TRUE),
        (p11.CKA_SIGN, p11.CK_TRUE if sign else p11.CK_FALSE),
        (p11.CKA_ALWAYS_AUTHENTICATE, p11.CK_TRUE if always_authenticate else p11.CK_FALSE),
        *common,
    ]
    mechanism = p11.Mechanism(p11.CKM_EC_KEY_PAIR_GEN, None)
    pair: tuple[Any, Any] = session.generateKeyPair(public, private, mecha=mechanism)
    return pair


def _rsa_pair(p11: Any, session: Any, label: str, key_id: bytes) -> None:
    common = [(p11.CKA_TOKEN, p11.CK_TRUE), (p11.CKA_LABEL, label), (p11.CKA_ID, key_id)]
    public = [
        (p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
        (p11.CKA_MODULUS_BITS, 1024),
        (p11.CKA_PUBLIC_EXPONENT, (0x01, 0x00, 0x01)),
        *common,
    ]
    private = [(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), (p11.CKA_SIGN, p11.CK_TRUE), *common]
    session.generateKeyPair(public, private, mecha=p11.MechanismRSAGENERATEKEYPAIR)


def read_public_key(p11: Any, session: Any, handle: Any, curve: str) -> ec.EllipticCurvePublicKey:
    """Reads an EC public key object straight from the token (for test set-up)."""
    point = bytes(session.getAttributeValue(handle, [p11.CKA_EC_POINT], allAsBinary=True)[0])
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    size = 1 + 2 * ((curves[curve].key_size + 7) // 8)
    return ec.EllipticCurvePublicKey.from_encoded_point(curves[curve], point[-size:])


def _populate(p11: Any, lib: Any, slot: int, cert_dir: Path) -> None:
    session = lib.openSession(slot, p11.CKF_RW_SESSION)
    session.login(USER_PIN)
    try:
        for label, key_id, curve in (("p256", 1, "P-256"), ("p384", 2, "P-384")):
            _ec_pair(p11, session, label, bytes([key_id]), curve)
        _ec_pair(p11, session, "p521", b"\x03", "P-521")
        _ec_pair(p11, session, "dup", b"\x10", "P-256")
        _ec_pair(p11, session, "dup", b"\x11", "P-256")
        _rsa_pair(p11, session, "rsa", b"\x20")
        _ec_pair(p11, session, "nosign", b"\x21", "P-256", sign=False)
        _ec_pair(p11, session, "always", b"\x24", "P-256", always_authenticate=True)
        public, _ = _ec_pair(p11, session, "nopub", b"\x22", "P-256")
        session.destroyObject(public)
        public, _ = _ec_pair(p11, session, "certonly", b"\x23", "P-256")
        cert = issue_token_certificate(
            read_public_key(p11, session, public, "P-256"), cert_dir, "certonly"
        )
        session.destroyObject(public)
        session.createObject(
            [
                (p11.CKA_CLASS, p11.CKO_CERTIFICATE),
                (p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
                (p11.CKA_TOKEN, p11.CK_TRUE),
                (p11.CKA_LABEL, "certonly"),
                (p11.CKA_ID, b"\x23"),
                (p11.CKA_SUBJECT, cert.subject.public_bytes()),
                (p11.CKA_VALUE, cert.public_bytes(serialization.Encoding.DER)),
            ]
        )
    finally:
        session.closeSession()


def _populate_other(p11: Any, lib: Any, slot: int) -> None:
    session = lib.openSession(slot, p11.CKF_RW_SESSION)
    session.login(USER_PIN)
    try:
        _ec_pair(p11, session, "p256", b"\x01", "P-256")
    finally:
        session.closeSession()


def create_tokens(directory: Path, module: str) -> SoftHsm:
    """Creates the two test tokens under ``directory``; ``SOFTHSM2_CONF`` must point there.

    Args:
        directory: an empty directory for the configuration and the token store.
        module: the SoftHSM2 module path.
    """
    import PyKCS11

    for label in (TOKEN_LABEL, OTHER_LABEL):
        _init_token(label)
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    try:
        infos: dict[str, TokenInfo] = {}
        for slot in lib.getSlotList(tokenPresent=True):
            info = lib.getTokenInfo(slot)
            label = info.label.strip()
            if label in (TOKEN_LABEL, OTHER_LABEL):
                infos[label] = TokenInfo(label, info.serialNumber.strip(), int(slot))
        _populate(PyKCS11, lib, infos[TOKEN_LABEL].slot_id, directory)
        _populate_other(PyKCS11, lib, infos[OTHER_LABEL].slot_id)
    finally:
        lib.unload()
    pin_file = directory / "pin.txt"
    pin_file.write_text(USER_PIN + "\n")
    return SoftHsm(
        module=module,
        conf=Path(os.environ["SOFTHSM2_CONF"]),
        token=infos[TOKEN_LABEL],
        other=infos[OTHER_LABEL],
        pin_file=pin_file,
        directory=directory,
    )


_CA: list[Issued] = []


def token_ca() -> Issued:
    """The session's test CA (P-256, made with ``cryptography``), created on first use."""
    if not _CA:
        _CA.append(make_ca("omsign PKCS#11 test CA"))
    return _CA[0]


def issue_token_certificate(
    public_key: ec.EllipticCurvePublicKey, directory: Path, stem: str = "token"
) -> x509.Certificate:
    """Issues a code-signing certificate for a token's public key from :func:`token_ca`.

    Writes ``<stem>.crt`` (the leaf) and ``<stem>-ca.crt`` (the CA) under ``directory``.
    """
    ca = token_ca()
    cert = certify_public_key(ca, public_key, name="omsign token key", not_after=now() + days(30))
    directory.mkdir(parents=True, exist_ok=True)
    write_certs(directory / f"{stem}.crt", [cert])
    write_certs(directory / f"{stem}-ca.crt", [ca.cert])
    return cert


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """Two SoftHSM2 tokens with known keys and PIN, for the whole test session."""
    module = _require_softhsm()
    directory = tmp_path_factory.mktemp("softhsm")
    store = directory / "tokens"
    store.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {store}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        for name in ("OMSIGN_PKCS11_PIN", "OMSIGN_PKCS11_MODULE"):
            patch.delenv(name, raising=False)
        yield create_tokens(directory, module)
