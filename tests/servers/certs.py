"""TLS material made by trustme, written to files for the subprocess peers."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import trustme


@dataclasses.dataclass(frozen=True, slots=True)
class TLSMaterial:
    """CAs and server certificates for one test session.

    Attributes:
        ca: The CA that signed ``certfile`` (trust it to connect).
        cafile: PEM of ``ca``.
        certfile, keyfile: Server chain and key for ``localhost`` and ``127.0.0.1``.
        other_cafile: PEM of an unrelated CA ("bad certificate" tests: trust this one instead).
        other_certfile, other_keyfile: A ``localhost``/``127.0.0.1`` cert signed by
            ``other_ca``.
        wrong_host_certfile, wrong_host_keyfile: Signed by ``ca`` but only for
            ``wrong.example.test`` (hostname mismatch tests).
    """

    ca: trustme.CA
    cafile: str
    certfile: str
    keyfile: str
    other_ca: trustme.CA
    other_cafile: str
    other_certfile: str
    other_keyfile: str
    wrong_host_certfile: str
    wrong_host_keyfile: str

    def server_context(
        self, alpn: list[str] | None = None, *, which: str = "good"
    ) -> ssl.SSLContext:
        """A server-side context; ``which`` is ``"good"``, ``"other"`` or ``"wrong_host"``."""
        cert, key = {
            "good": (self.certfile, self.keyfile),
            "other": (self.other_certfile, self.other_keyfile),
            "wrong_host": (self.wrong_host_certfile, self.wrong_host_keyfile),
        }[which]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A client-side context that trusts ``ca`` (for third-party clients in tests)."""
        ctx = ssl.create_default_context(cafile=self.cafile)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A server context for the good certificate, no ALPN."""
        return self.server_context()


def make_tls_material(directory: Path) -> TLSMaterial:
    ca = trustme.CA()
    other_ca = trustme.CA()
    good = ca.issue_cert("localhost", "127.0.0.1")
    other = other_ca.issue_cert("localhost", "127.0.0.1")
    wrong = ca.issue_cert("wrong.example.test")

    def write(name: str, blob: trustme.Blob) -> str:
        path = directory / name
        blob.write_to_path(str(path))
        return str(path)

    return TLSMaterial(
        ca=ca,
        cafile=write("ca.pem", ca.cert_pem),
        certfile=write("server-chain.pem", _chain(good)),
        keyfile=write("server-key.pem", good.private_key_pem),
        other_ca=other_ca,
        other_cafile=write("other-ca.pem", other_ca.cert_pem),
        other_certfile=write("other-chain.pem", _chain(other)),
        other_keyfile=write("other-key.pem", other.private_key_pem),
        wrong_host_certfile=write("wrong-host-chain.pem", _chain(wrong)),
        wrong_host_keyfile=write("wrong-host-key.pem", wrong.private_key_pem),
    )


def _chain(cert: trustme.LeafCert) -> trustme.Blob:
    return trustme.Blob(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
