"""Sigstore keyless signing: an OIDC identity, a Fulcio certificate, a Rekor entry.

The token comes from the caller, the CI's ambient credentials, or the browser flow;
sigstore-python signs the in-toto statement as a DSSE envelope, logs it in Rekor, and
timestamps it when the instance has a TSA. sigstore-python is imported only when signing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from omsign.backends.sigstore._trust import SigstoreSettings, load_trust_config
from omsign.bundle import Signed
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

__all__ = ["SigstoreBundleSigner"]


def _no_identity() -> KeyLoadError:
    return KeyLoadError(
        "no identity token for Sigstore signing",
        hint="give {option0}, run in CI with OIDC credentials, run in a terminal to log in, "
        "or sign with {option1}",
        options=("identity_token", "key"),
    )


class SigstoreBundleSigner:
    """Signs statements with a Fulcio certificate bound to an OIDC identity."""

    def __init__(
        self,
        settings: SigstoreSettings,
        identity_token: str | None = None,
        oauth_out_of_band: bool = False,
    ) -> None:
        """Prepares a signer; the token and certificate come with :meth:`prepare`.

        Args:
            settings: which Sigstore instance to sign with.
            identity_token: an OIDC token; when absent, ambient credentials
                (CI) are used, else the interactive browser flow.
            oauth_out_of_band: in the browser flow, paste the code by hand.
        """
        self._settings = settings
        self._token = identity_token
        self._out_of_band = oauth_out_of_band
        self._signer: Any = None
        if identity_token is None and not sys.stdin.isatty():
            # Fail before the model is hashed, not after: without a terminal the only
            # token source is the CI's (fetched again at signing time, as it expires).
            from sigstore.oidc import detect_credential

            try:
                found = detect_credential()
            except Exception:  # a CI provider that is present but misconfigured
                found = None
            if not found:
                raise _no_identity()

    def _identity(self, trust: ClientTrustConfig) -> Any:
        from sigstore.errors import Error as SigstoreError
        from sigstore.oidc import IdentityError as OidcError
        from sigstore.oidc import IdentityToken, Issuer, detect_credential

        try:
            raw = self._token or detect_credential()
            if raw:
                return IdentityToken(raw)
            if not sys.stdin.isatty():  # the browser flow would wait for a login forever
                raise _no_identity()
            issuer = Issuer(trust.signing_config.get_oidc_url())
            return issuer.identity_token(force_oob=self._out_of_band)
        except OidcError as exc:
            raise KeyLoadError(f"unusable identity token: {exc}") from exc
        except (SigstoreError, OSError) as exc:
            raise BackendUnavailableError(f"cannot get an identity token: {exc}") from exc

    def prepare(self) -> None:
        """Gets the trust root, the identity token and a signing certificate now.

        ``omsign.sign`` calls this before it hashes the model, so that a missing token, a
        bad trust config or an unreachable instance fails at once, whatever the model's
        size. The certificate is then used to sign (another is obtained if it expired
        while the model was hashed).

        Raises:
            KeyLoadError: no usable identity token, or an unreadable trust config.
            BackendUnavailableError: the trust root or Fulcio cannot be reached.
        """
        if self._signer is None:
            self._signer = self._open()

    def _open(self) -> Any:
        from sigstore.sign import Signer, SigningContext

        trust = load_trust_config(self._settings, signing=True)
        token = self._identity(trust)
        with _service_errors():
            return Signer(token, SigningContext.from_trust_config(trust), cache=True)

    def sign_statement(self, payload: bytes) -> Signed:
        """Signs the in-toto statement bytes as DSSE; returns the signature and its material.

        Raises:
            KeyLoadError: no usable identity token (missing, malformed, expired).
            BackendUnavailableError: a Sigstore service is unreachable or refused.
            UsageError: the payload is not an in-toto statement.
        """
        from sigstore import dsse
        from sigstore._internal.fulcio.client import ExpiredCertificate
        from sigstore.errors import Error as SigstoreError

        try:
            statement = dsse.Statement(payload)
        except SigstoreError as exc:
            raise UsageError(f"payload is not an in-toto statement: {exc}") from exc
        self.prepare()
        try:
            with _service_errors():
                bundle = self._signer.sign_dsse(statement)
        except ExpiredCertificate:  # hashing outlasted the certificate: get another one
            self._signer = self._open()
            with _service_errors():
                bundle = self._signer.sign_dsse(statement)
        from omsign.bundle import parse_bundle

        signed = parse_bundle(bundle.to_json().encode(), "the bundle from sigstore-python")
        return Signed(signed.signature, signed.material)


@contextlib.contextmanager
def _service_errors() -> Iterator[None]:
    """Turns what sigstore-python raises while signing into omsign errors.

    An expired signing certificate passes through: the caller obtains another.
    """
    import requests
    from sigstore._internal.fulcio.client import FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError
    from sigstore.oidc import ExpiredIdentity

    try:
        yield
    except ExpiredIdentity as exc:
        raise KeyLoadError("the identity token has expired; get a new one") from exc
    except FulcioClientError as exc:
        detail = str(exc) or str(exc.__cause__)
        raise BackendUnavailableError(f"Fulcio refused the certificate: {detail}") from exc
    except RekorClientError as exc:
        raise BackendUnavailableError(f"Rekor refused the log entry: {exc}") from exc
    except requests.RequestException as exc:
        raise BackendUnavailableError(f"cannot reach a Sigstore service: {exc}") from exc
    except VerificationError as exc:
        raise BackendUnavailableError(
            f"the certificate from Fulcio does not match the trust root: {exc}"
        ) from exc
    except SigstoreError as exc:
        raise BackendUnavailableError(f"Sigstore signing failed: {exc}") from exc
