"""TLS material checked before anything starts, so a bad certificate or key is named as what it is
(gRPC would only fail to open the port, which reads like "port in use"): the --ssl-cert/--ssl-key
files and the PEM texts of an --ssl-config-file alike."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from facegan.errors import UsageError
from facegan.serving.config_files import TlsConfig, tls_config


def _read(path: str, what: str) -> bytes:
    file = Path(path)
    if not file.exists():
        raise UsageError(f"TLS {what} file {path} does not exist")
    if file.is_dir():
        raise UsageError(f"TLS {what} file {path} is a folder")
    try:
        return file.read_bytes()
    except OSError as e:
        raise UsageError(f"TLS {what} file {path} cannot be read: {e.strerror}") from None


def check_key_pair(cert_pem: bytes, key_pem: bytes, cert_name: str, key_name: str) -> None:
    """UsageError unless `cert_pem` is a PEM certificate chain and `key_pem` its unencrypted private
    key. Python's ssl loads key pairs only from files: they go to a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="facegan-tls-") as folder:  # mode 0700
        cert_file = os.path.join(folder, "cert.pem")
        key_file = os.path.join(folder, "key.pem")
        Path(cert_file).write_bytes(cert_pem)
        Path(key_file).write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert_file, key_file, password=lambda: b"")  # an encrypted key fails here
        except ssl.SSLError as e:
            if "KEY_VALUES_MISMATCH" in str(e):
                raise UsageError(f"TLS key {key_name} does not belong to the certificate {cert_name}") from None
            raise UsageError(
                f"TLS certificate {cert_name} or key {key_name} is not valid PEM (an unencrypted private key "
                f"and its certificate chain): {e.reason or e}"
            ) from None


def check_ca(ca_pem: bytes, name: str) -> None:
    try:
        ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise UsageError(f"TLS client CA {name} is not a valid PEM certificate: {reason}") from None


def tls_from_files(cert: str | None, key: str | None) -> TlsConfig:
    """--ssl-cert/--ssl-key as the same TlsConfig an --ssl-config-file gives (no client CA), so the
    server has one way to turn TLS on."""
    if not (cert and key):
        raise UsageError("TLS needs both --ssl-cert and --ssl-key")
    cert_pem = _read(cert, "certificate")
    key_pem = _read(key, "key")
    check_key_pair(cert_pem, key_pem, cert, key)
    return TlsConfig(server_key=key_pem, server_cert=cert_pem, custom_ca=None, client_verify=False)


def tls_from_config_file(path: str) -> TlsConfig:
    """--ssl-config-file (TF Serving's SSLConfig), its PEM texts checked as the files are."""
    config = tls_config(path)
    check_key_pair(config.server_cert, config.server_key, f"server_cert in {path}", f"server_key in {path}")
    if config.custom_ca:
        check_ca(config.custom_ca, f"custom_ca in {path}")
    return config
