"""RFC 3161 timestamps: real requests to a local openssl TSA, and the attacks verify rejects."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from rfc3161_client import decode_timestamp_response

from helpers.pki import days, issue_tsa_cert, make_ca, now
from omsign._timestamp import describe_timestamp, request_timestamp, verify_timestamp
from omsign.errors import BackendUnavailableError, Error, SignatureError, UsageError
from services.tsa import REJECTION, RunningTSA, start_tsa

SIGNATURE = b"0E\x02 DSSE signature bytes under test"


@pytest.fixture(scope="module")
def token(tsa: RunningTSA) -> bytes:
    return request_timestamp(tsa.url, SIGNATURE)


def _serve(tmp_path: Path, **kwargs: object) -> RunningTSA:
    return start_tsa(tmp_path / "tsa", **kwargs)  # type: ignore[arg-type]


def _stamp_with(running: RunningTSA) -> bytes:
    try:
        return request_timestamp(running.url, SIGNATURE)
    finally:
        running.stop()


# Round trip


def test_round_trip_proves_a_time_close_to_now(tsa: RunningTSA, token: bytes) -> None:
    proven = verify_timestamp(token, SIGNATURE, [tsa.root.cert])
    assert proven.tzinfo is not None
    assert proven.utcoffset() == datetime.timedelta(0)
    assert abs(proven - now()) < datetime.timedelta(seconds=30)


def test_token_is_the_der_reply_sigstore_python_stores(token: bytes) -> None:
    # sigstore-python writes base64(TimeStampResponse.as_bytes()) in signedTimestamp
    # and parses it back with TimestampVerificationData: ours must read back unchanged.
    from sigstore.models import TimestampVerificationData

    stored = json.dumps(
        {"rfc3161Timestamps": [{"signedTimestamp": base64.b64encode(token).decode()}]}
    )
    (reply,) = TimestampVerificationData.from_json(stored).rfc3161_timestamps
    assert reply.as_bytes() == token
    assert reply.tst_info.message_imprint.message == hashlib.sha256(SIGNATURE).digest()


def test_openssl_verifies_our_tokens_independently(
    tsa: RunningTSA, token: bytes, tmp_path: Path
) -> None:
    (tmp_path / "signature").write_bytes(SIGNATURE)
    (tmp_path / "reply.tsr").write_bytes(token)
    done = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(tmp_path / "signature"),
         "-in", str(tmp_path / "reply.tsr"), "-CAfile", str(tsa.root_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout


def test_authority_certificate_expired_since_the_timestamp_is_accepted(tmp_path: Path) -> None:
    # The TSA certificate is checked at genTime, not now: a timestamp outlives it.
    root = make_ca("Root of a short-lived TSA")
    short_lived = issue_tsa_cert(root, not_after=now() + datetime.timedelta(seconds=4))
    stamped = _stamp_with(_serve(tmp_path, root=root, tsa=short_lived))
    time.sleep(max(0.0, (short_lived.cert.not_valid_after_utc - now()).total_seconds()) + 1.1)
    assert short_lived.cert.not_valid_after_utc < now()
    proven = verify_timestamp(stamped, SIGNATURE, [root.cert])
    assert proven <= short_lived.cert.not_valid_after_utc


def test_describe_reports_time_authority_serial_and_hash(token: bytes) -> None:
    described = describe_timestamp(token)
    assert described["time"].endswith("Z")
    when = datetime.datetime.fromisoformat(described["time"].replace("Z", "+00:00"))
    assert abs(when - now()) < datetime.timedelta(seconds=30)
    assert "CN=omsign test TSA" in described["authority"]
    assert int(described["serial"]) >= 1
    assert described["hash_algorithm"] == "sha256"


def test_describe_rejects_garbage() -> None:
    with pytest.raises(SignatureError, match="timestamp is malformed"):
        describe_timestamp(b"not a timestamp")


def test_intermediates_may_be_given_as_anchors(tmp_path: Path) -> None:
    running = _serve(tmp_path, intermediate=True)
    stamped = _stamp_with(running)
    intermediate = running.tsa.chain[0]
    verify_timestamp(stamped, SIGNATURE, [running.root.cert, intermediate])
    with pytest.raises(SignatureError, match="untrusted authority"):
        verify_timestamp(stamped, SIGNATURE, [running.root.cert])


# What verify_timestamp rejects


def test_rejects_a_timestamp_from_an_untrusted_authority(
    tsa: RunningTSA, untrusted_tsa: RunningTSA
) -> None:
    rogue = request_timestamp(untrusted_tsa.url, SIGNATURE)
    with pytest.raises(SignatureError, match=r"untrusted authority \(CN=omsign rogue TSA"):
        verify_timestamp(rogue, SIGNATURE, [tsa.root.cert])


def test_rejects_a_self_signed_authority_outside_the_anchors(tmp_path: Path) -> None:
    running = _serve(tmp_path, tsa=issue_tsa_cert(None, name="self-made TSA"))
    stamped = _stamp_with(running)
    with pytest.raises(SignatureError, match=r"untrusted authority \(CN=self-made TSA"):
        verify_timestamp(stamped, SIGNATURE, [make_ca("Some root").cert])


def test_rejects_a_timestamp_over_other_signature_bytes(tsa: RunningTSA, token: bytes) -> None:
    with pytest.raises(SignatureError, match="does not cover this signature"):
        verify_timestamp(token, SIGNATURE + b"x", [tsa.root.cert])


def test_rejects_a_truncated_token(tsa: RunningTSA, token: bytes) -> None:
    with pytest.raises(SignatureError, match="timestamp is malformed"):
        verify_timestamp(token[:-20], SIGNATURE, [tsa.root.cert])


def test_rejects_a_token_with_a_forged_gen_time(tsa: RunningTSA, token: bytes) -> None:
    gen_time = decode_timestamp_response(token).tst_info.gen_time
    stamp = gen_time.strftime("%Y%m%d%H%M%S").encode()
    assert token.count(stamp) == 1
    # An hour earlier: still inside the TSA certificate's validity, so only the
    # signature over TSTInfo can catch it.
    earlier = (gen_time - datetime.timedelta(hours=1)).strftime("%Y%m%d%H%M%S").encode()
    with pytest.raises(SignatureError, match="timestamp does not verify"):
        verify_timestamp(token.replace(stamp, earlier), SIGNATURE, [tsa.root.cert])


def test_rejects_a_token_with_a_corrupted_signature(tsa: RunningTSA, token: bytes) -> None:
    corrupted = token[:-1] + bytes([token[-1] ^ 0x01])
    with pytest.raises(SignatureError, match="timestamp does not verify"):
        verify_timestamp(corrupted, SIGNATURE, [tsa.root.cert])


def test_rejects_an_authority_without_the_timestamping_usage(tmp_path: Path) -> None:
    root = make_ca("Root of a code signer")
    running = _serve(
        tmp_path, root=root, tsa=issue_tsa_cert(root, name="code signer", eku_time_stamping=False)
    )
    stamped = _stamp_with(running)
    with pytest.raises(SignatureError, match=r"\(CN=code signer.*not certified for timestamping"):
        verify_timestamp(stamped, SIGNATURE, [root.cert])


def test_rejects_an_authority_with_a_non_critical_usage(tmp_path: Path) -> None:
    root = make_ca("Root of a lax TSA")
    running = _serve(tmp_path, root=root, tsa=issue_tsa_cert(root, critical_eku=False))
    stamped = _stamp_with(running)
    with pytest.raises(SignatureError, match="non-critical extended key usage"):
        verify_timestamp(stamped, SIGNATURE, [root.cert])


def test_rejects_an_authority_expired_at_gen_time(tmp_path: Path) -> None:
    root = make_ca("Root of an expired TSA", not_before=now() - days(30))
    expired = issue_tsa_cert(root, not_before=now() - days(20), not_after=now() - days(10))
    running = _serve(tmp_path, root=root, tsa=expired)
    stamped = _stamp_with(running)
    with pytest.raises(SignatureError, match="was not valid at the timestamp"):
        verify_timestamp(stamped, SIGNATURE, [root.cert])


def test_rejects_when_no_anchor_is_given(token: bytes) -> None:
    with pytest.raises(SignatureError, match="no trust anchors"):
        verify_timestamp(token, SIGNATURE, [])


# What request_timestamp reports


def test_garbage_http_response_is_a_clear_error(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="garbage")
    with pytest.raises(Error, match=r"^timestamp authority http://127\.0\.0\.1:\d+/tsr sent"):
        _stamp_with(running)


def test_http_error_means_the_authority_is_unavailable(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="http-500")
    with pytest.raises(BackendUnavailableError, match="answered HTTP 500"):
        _stamp_with(running)


def test_replayed_reply_is_rejected(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="replay")
    try:
        request_timestamp(running.url, SIGNATURE)
        with pytest.raises(Error, match="wrong nonce"):
            request_timestamp(running.url, SIGNATURE)
    finally:
        running.stop()


def test_unreachable_authority_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tsr"
    with pytest.raises(BackendUnavailableError, match=f"timestamp authority {url} is unreachable"):
        request_timestamp(url, SIGNATURE, timeout=5)


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(UsageError, match="must be http or https"):
        request_timestamp("file:///etc/passwd", SIGNATURE)


def test_tsa_fixture_writes_its_root_as_pem(tsa: RunningTSA) -> None:
    loaded = x509.load_pem_x509_certificates(tsa.root_path.read_bytes())
    assert loaded == [tsa.root.cert]


def test_any_corrupted_byte_is_a_signature_error_or_changes_nothing(
    tsa: RunningTSA, token: bytes
) -> None:
    """Found by mutation: damaged embedded certificates raised ValueError and KeyError."""
    proven = verify_timestamp(token, SIGNATURE, [tsa.root.cert])
    for i in range(0, len(token), 3):
        bad = bytearray(token)
        bad[i] ^= 0x01
        try:
            when = verify_timestamp(bytes(bad), SIGNATURE, [tsa.root.cert])
        except SignatureError:
            continue
        assert when == proven  # only unsigned fields can change without failing


def test_a_reply_over_other_data_is_rejected(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="other-data")
    with pytest.raises(Error, match="timestamped different data than requested"):
        _stamp_with(running)


def test_a_reply_without_the_authority_certificate_is_rejected(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="no-certificate")
    with pytest.raises(Error, match="did not include its certificate"):
        _stamp_with(running)


def test_a_refusal_is_reported_with_its_reason(tmp_path: Path) -> None:
    running = _serve(tmp_path, fault="rejection")
    with pytest.raises(Error, match=r"refused the request \(status 2: busy\)"):
        _stamp_with(running)


def test_a_stored_refusal_is_not_a_timestamp(tsa: RunningTSA) -> None:
    with pytest.raises(SignatureError, match=r"not granted \(status 2\)"):
        verify_timestamp(REJECTION, SIGNATURE, [tsa.root.cert])
