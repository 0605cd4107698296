"""First-use pinning: the signers first seen for each model, in a local history file.

A rule with ``pin = true`` records, the first time a model verifies under it, who signed
it (method, signer, issuer) and when. Later verifications still check everything under
the current policy (the history never vouches for content); on top of that:

* a signature by any other identity fails (:class:`PinningError`) until accepted
  (:func:`record_pins` with ``accept=True``, which ``omsign policy accept`` calls after
  verifying the model in full);
* a signature over other content that is older than the newest one recorded fails
  (:class:`RollbackError`): by the proven signing time (a trusted timestamp or log
  entry) when there is one, else by the time the bundle claims, and the message says
  which.

The file is JSON, outside the model: ``$OMSIGN_HISTORY``, else
``$XDG_STATE_HOME/omsign/history.json``, else ``~/.local/state/omsign/history.json``.
Writers hold an exclusive lock on ``<file>.lock`` for the read-modify-write and replace
the file atomically; a damaged file is an error (exit 2), never an empty history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from omsign.errors import Error, IdentityError

if TYPE_CHECKING:
    from omsign.bundle import Bundle

__all__ = [
    "HISTORY_ENV",
    "PinCheck",
    "PinningError",
    "RollbackError",
    "claimed_time",
    "default_history_path",
    "record_pins",
]

HISTORY_ENV = "OMSIGN_HISTORY"
_FORMAT = "omsign-history"
_MAX_BYTES = 16 * 1024 * 1024


class PinningError(IdentityError):
    """The model is signed by another identity than the one pinned at first use."""


class RollbackError(IdentityError):
    """The signature is older than the newest recorded for the model, over other content."""


class HistoryError(Error):
    """The history file cannot be read or written (an environment error)."""


class Signer(Protocol):
    """What the history needs of a verified signature."""

    @property
    def method(self) -> str: ...
    @property
    def signer(self) -> str: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def signed_at(self) -> dt.datetime | None: ...
    @property
    def claimed_at(self) -> dt.datetime | None: ...


def default_history_path() -> Path:
    """``$OMSIGN_HISTORY``, else the XDG state directory's ``omsign/history.json``."""
    given = os.environ.get(HISTORY_ENV)
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "omsign" / "history.json"


def claimed_time(bundle: Bundle) -> dt.datetime | None:
    """When the bundle says it was signed, unverified: a timestamp, log entry or certificate.

    The newest RFC 3161 token's time, else a log entry's integrated time, else the
    signing certificate's start of validity; None for a bare key signature.
    """
    times: list[dt.datetime] = []
    from omsign._timestamp import describe_timestamp

    for token in bundle.timestamps[:32]:
        try:
            times.append(_parse_time(describe_timestamp(token)["time"]))
        except (Error, ValueError, KeyError):
            continue
    if times:
        return max(times)
    for entry in bundle.tlog_entries[:32]:
        value = entry.get("integratedTime")
        if isinstance(value, (int, str)) and str(value).isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.timezone.utc)
    if bundle.certificates:
        from cryptography import x509

        try:
            return x509.load_der_x509_certificate(bundle.certificates[0]).not_valid_before_utc
        except ValueError:
            return None
    return None


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _identity(s: Signer) -> dict[str, Any]:
    return {"method": s.method, "signer": s.signer, "issuer": s.issuer}


def _key(identity: dict[str, Any]) -> tuple[str, str, str]:
    return (str(identity["method"]), str(identity["signer"]), str(identity.get("issuer")))


def _spelt(identity: dict[str, Any]) -> str:
    issuer = identity.get("issuer")
    return f"{identity['signer']}" + (f" (issuer {issuer})" if issuer else "")


def signing_time(signers: Sequence[Signer]) -> tuple[dt.datetime | None, bool]:
    """The newest proven signing time of the signatures, else the newest claimed one."""
    proven = [s.signed_at for s in signers if s.signed_at is not None]
    if proven:
        return max(proven), True
    claimed = [s.claimed_at for s in signers if s.claimed_at is not None]
    return (max(claimed), False) if claimed else (None, False)


@dataclass(frozen=True)
class PinCheck:
    """What the history said about one verification.

    Attributes:
        history: the history file.
        location: the model as the policy sees it.
        status: ``first-use`` (recorded now), ``pinned`` (the recorded signers signed)
            or ``accepted`` (the signers were recorded by an accept).
        pinned: the identities now recorded.
        signed_at: the signing time compared, and whether it was proven.
        notes: what could not be judged (no signing time).
    """

    history: Path
    location: str
    status: str
    pinned: tuple[str, ...]
    signed_at: dt.datetime | None
    proven: bool
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The check as a JSON-ready object."""
        return {
            "history": str(self.history),
            "status": self.status,
            "pinned": list(self.pinned),
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "time_proven": self.proven,
            "notes": list(self.notes),
        }


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``<path>.lock`` (created 0600) while the body runs."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot lock the signer history ({exc.strerror})") from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: atomic replace only
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load(path: Path) -> dict[str, Any]:
    """The history's models, or none if the file does not exist yet.

    Raises:
        HistoryError: the file is not a regular file, too large, or damaged.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the signer history ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_BYTES:
        os.close(fd)
        raise HistoryError(f"{path}: the signer history is not a regular file under 16 MiB")
    with os.fdopen(fd, "rb") as f:
        data = f.read(_MAX_BYTES + 1)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise _damaged(path, str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or doc.get("version") != 1:
        raise _damaged(path, "not an omsign history, version 1")
    models = doc.get("models")
    if not isinstance(models, dict):
        raise _damaged(path, "models is not an object")
    return models


def _damaged(path: Path, why: str) -> HistoryError:
    return HistoryError(
        f"{path}: the signer history is damaged ({why}); move it away to start a new one"
    )


def _save(path: Path, models: dict[str, Any]) -> None:
    from omsign._atomic import write_atomic

    doc = {"format": _FORMAT, "version": 1, "models": models}
    try:
        write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n", 0o600)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot write the signer history ({exc.strerror})") from None


def _when(time: dt.datetime | None, proven: bool) -> str:
    if time is None:
        return "no signing time"
    return f"{time.isoformat()} ({'proven' if proven else 'claimed by the bundle, not proven'})"


def record_pins(
    history: Path,
    location: str,
    signers: Sequence[Signer],
    root_digest: str,
    *,
    accept: bool = False,
) -> PinCheck:
    """Checks verified signers against the history of the model, and records them.

    Call only after the model verified in full under the current policy.

    Args:
        history: the history file.
        location: the model as the policy sees it.
        signers: the counted signatures.
        root_digest: what they sign.
        accept: record these signers and this time as the model's, whatever was
            recorded before.

    Raises:
        PinningError: a signer is not among those recorded (unless ``accept``).
        RollbackError: the signatures are older than the newest recorded, over other
            content (unless ``accept``).
        HistoryError: the history file cannot be read or written.
    """
    time, proven = signing_time(signers)
    current = sorted((_identity(s) for s in signers), key=_key)
    notes = () if time else ("no signing time: whether this is a rollback cannot be told",)
    with _locked(history):
        models = _load(history)
        entry = models.get(location)
        status = "accepted" if accept else "first-use" if entry is None else "pinned"
        if entry is not None and not accept:
            _check(history, location, entry, current, when=(time, proven), digest=root_digest)
        if entry is None or accept:
            entry = {"signers": current, "first_seen": _now(), "newest": None}
        newest = entry.get("newest")
        if time is not None and (
            accept or newest is None or time >= _parse_time(str(newest["time"]))
        ):
            entry["newest"] = {
                "time": time.isoformat(),
                "proven": proven,
                "root_digest": root_digest,
            }
        if accept:
            entry["accepted_at"] = _now()
        models[location] = entry
        _save(history, models)
    pinned = tuple(_spelt(i) for i in entry["signers"])
    return PinCheck(history, location, status, pinned, time, proven, notes)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _check(
    history: Path,
    location: str,
    entry: dict[str, Any],
    current: list[dict[str, Any]],
    *,
    when: tuple[dt.datetime | None, bool],
    digest: str,
) -> None:
    time, proven = when
    try:
        pinned = {_key(i) for i in entry["signers"]}
        newest = entry.get("newest")
        newest_time = _parse_time(str(newest["time"])) if newest else None
    except (KeyError, TypeError, ValueError):
        raise HistoryError(
            f"{history}: the signer history's entry for {location} is damaged; "
            "move the file away to start a new one"
        ) from None
    others = [i for i in current if _key(i) not in pinned]
    if others:
        raise PinningError(
            f"{location}: signed by {', '.join(_spelt(i) for i in others)}, not by the "
            f"signer(s) pinned at first use ({', '.join(_spelt(i) for i in entry['signers'])}; "
            f"recorded in {history})",
            hint="if the new signer is expected, accept it with the policy accept command",
        )
    if (
        newest
        and newest_time is not None
        and time is not None
        and time < newest_time
        and newest.get("root_digest") != digest
    ):
        raise RollbackError(
            f"{location}: signed at {_when(time, proven)}, before the newest signature "
            f"recorded for this model ({_when(newest_time, bool(newest.get('proven')))}) "
            "over other content: a rollback to an older version",
            hint="if the older version is wanted, accept it with the policy accept command",
        )
