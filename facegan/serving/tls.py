"""TLS files checked before anything starts, so a bad certificate or key is named as what it is
(gRPC would only fail to open the port, which reads like "port in use")."""

from __future__ import annotations

import ssl
from pathlib import Path

from facegan.errors import UsageError
from facegan.serving.config_files import TlsConfig


def check_tls_files(cert: str, key: str) -> None:
    """Raise UsageError unless `cert` is a readable PEM certificate chain and `key` its private key."""
    if not (cert and key):
        raise UsageError("TLS needs both --ssl-cert and --ssl-key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as e:
        raise UsageError(f"TLS file {e.filename} does not exist") from None
    except PermissionError as e:
        raise UsageError(f"TLS file {e.filename} is not readable") from None
    except IsADirectoryError as e:
        raise UsageError(f"TLS file {e.filename} is a folder") from None
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e):
            raise UsageError(f"TLS key {key} does not belong to the certificate {cert}") from None
        raise UsageError(
            f"TLS certificate {cert} or key {key} is not valid PEM (an unencrypted private key and its "
            f"certificate chain): {e.reason or e}"
        ) from None


def tls_from_files(cert: str, key: str) -> TlsConfig:
    """--ssl-cert/--ssl-key as the same TlsConfig an --ssl-config-file gives (no client CA), so the
    server has one way to turn TLS on."""
    check_tls_files(cert, key)
    return TlsConfig(
        server_key=Path(key).read_bytes(), server_cert=Path(cert).read_bytes(), custom_ca=None, client_verify=False
    )
