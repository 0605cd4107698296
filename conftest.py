"""Registers the test services (real SoftHSM2, RFC 3161 TSA, local Sigstore) as fixtures."""

pytest_plugins = [
    "services.tsa",
    "services.softhsm",
    "services.awskms",
    "services.clusters",
    "services.oci_registry",
    "services.docker_registry",
    "services.s3",
    "services.azurite",
    "services.nginx",
    "services.misbehaving_http",
    "services.tinyproxy",
    "services.sigstore_local.fixtures",
    "helpers.fixtures",
]
