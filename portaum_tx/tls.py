"""TLS for the mail front ends: the configured certificate, or a self-signed one.

A node with no ``[tls] certificate`` generates a self-signed pair once into
``<data_dir>/tls`` so that STARTTLS and the implicit-TLS ports work on the
default run; clients will warn about it, which is the honest outcome.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import ssl


class TLSConfigError(Exception):
    """The configured certificate or key cannot be used; the text names the file."""


def generate_self_signed(hostname: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A fresh ``(certificate_pem, key_pem)`` for ``hostname``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    alt_names = [x509.DNSName(hostname or "localhost")]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_paths(config) -> tuple[str, str]:
    """The PEM files to use, generating the self-signed pair when none is configured."""
    if config.tls.certificate:
        return config.tls.certificate, config.tls.private_key or config.tls.certificate
    directory = os.path.join(config.data_dir, "tls")
    cert_path = os.path.join(directory, "selfsigned.crt")
    key_path = os.path.join(directory, "selfsigned.key")
    if not (os.path.exists(cert_path) and os.path.exists(key_path)):
        os.makedirs(directory, exist_ok=True)
        cert_pem, key_pem = generate_self_signed(socket.getfqdn())
        # Written under temporary names and renamed so that two nodes
        # sharing a data directory never read half a file.
        for path, data, mode in ((key_path, key_pem, 0o600), (cert_path, cert_pem, 0o644)):
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
                f.write(data)
            os.replace(temporary, path)
    return cert_path, key_path


def context_factory(config) -> ssl.CertificateOptions:
    """Server-side TLS options from ``[tls]`` (TLS 1.2 or later)."""
    cert_path, key_path = certificate_paths(config)
    try:
        with open(cert_path, "rb") as handle:
            cert_pem = handle.read()
        with open(key_path, "rb") as handle:
            key_pem = handle.read()
    except OSError as exc:
        raise TLSConfigError(f"[tls] certificate: cannot read {exc.filename}: {exc.strerror}") from None
    try:
        certificate = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    except Exception as exc:
        raise TLSConfigError(f"[tls] certificate: {cert_path} and {key_path} are not a usable "
                             f"PEM certificate and key: {exc}") from None
    return ssl.CertificateOptions(privateKey=certificate.privateKey.original,
                                  certificate=certificate.original,
                                  raiseMinimumTo=ssl.TLSVersion.TLSv1_2)


def client_context(hostname: str, verify: bool = True):
    """Client TLS for outbound SMTP; ``verify=False`` for opportunistic STARTTLS."""
    if verify:
        return ssl.optionsForClientTLS(hostname)
    return ssl.CertificateOptions(verify=False)
