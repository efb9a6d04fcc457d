"""TLS client contexts: the one place an ``ssl.SSLContext`` is built from settings.

Both the database connection and the Kafka clients use it, so that certificate
verification means the same thing everywhere: the server certificate is always
verified (against ``ca``, else the system store); ``verify_identity`` only
decides whether the host name must match it.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def client_context(
    *,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    key_password: str | None,
    verify_identity: bool,
) -> ssl.SSLContext:
    """A client context; raises OSError (ssl.SSLError included) when a file is unusable."""
    # OpenSSL's own error for a missing file does not name it.
    for what, path in (("ca", ca), ("cert", cert), ("key", key)):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{what} file {path} does not exist")
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    # Python 3.13 turns on strict X.509 checks, which reject the self-signed
    # certificates MySQL and MariaDB generate for themselves.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.check_hostname = verify_identity
    if cert is not None:
        # Without a password OpenSSL would prompt on the terminal for an
        # encrypted key; an empty one makes it fail with an error instead.
        context.load_cert_chain(
            str(cert),
            keyfile=str(key) if key is not None else None,
            password=key_password if key_password is not None else "",
        )
    return context
