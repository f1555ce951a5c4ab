"""Development certificates for TLS between the site and the recommender.

    python scripts/dev_certs.py [--dir var/certs] [--force]     (make certs)

Writes, under var/certs/ (git-ignored, and never copied into an image):

- ca.pem, ca-key.pem: a private CA that signs the other two;
- server.pem, server-key.pem: the recommender, for localhost, 127.0.0.1, ::1
  and `recommender` (the compose service);
- client.pem, client-key.pem: the site's identity when the recommender
  requires client certificates.

Keys are P-256 (quick to make; every gRPC build speaks ECDSA) and readable by
their owner only. An existing complete set is left alone unless --force: a
running recommender and site keep trusting what they loaded. These are for
development and tests only; production certificates come from the operator's CA.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / "var" / "certs"
SERVER_NAMES = ("localhost", "recommender")
SERVER_ADDRESSES = ("127.0.0.1", "::1")
CLIENT_NAME = "bookstore-site"
VALID_DAYS = 365

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Issued:
    cert: x509.Certificate
    key: Key


@dataclass(frozen=True, slots=True)
class DevCerts:
    """Where a set of development certificates lives."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"

    @property
    def files(self) -> tuple[Path, ...]:
        return (
            self.ca,
            self.ca_key,
            self.server_cert,
            self.server_key,
            self.client_cert,
            self.client_key,
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bookstore development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    # Backdated a little: a clock slightly behind must not reject a fresh certificate.
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=days)
    )


def make_ca(common_name: str = "Bookstore development CA", *, days: int = VALID_DAYS) -> Issued:
    """A self-signed CA that may sign leaf certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = _validity(builder, days).sign(key, hashes.SHA256())
    return Issued(cert, key)


def issue(
    ca: Issued,
    *,
    common_name: str,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
    days: int = VALID_DAYS,
) -> Issued:
    """A leaf certificate signed by ``ca``, for a TLS server, a client, or both."""
    if not (server or client):
        raise ValueError("a certificate for nothing: say server=True, client=True or both")
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    # Names are checked against the SANs only (the CN is ignored by TLS clients).
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = _validity(builder, days).sign(ca.key, hashes.SHA256())
    return Issued(cert, key)


def cert_pem(issued: Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.PEM)


def key_pem(issued: Issued) -> bytes:
    # Unencrypted: gRPC cannot load a key that asks for a passphrase.
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_pair(issued: Issued, cert_path: Path, key_path: Path) -> None:
    """The certificate (world-readable) and its key (owner only, from the first byte)."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert_pem(issued))
    key_path.unlink(missing_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem(issued))


class IncompleteSet(RuntimeError):
    """Some of the files exist but not all: writing the rest would mix two CAs."""


def write_dev_certs(directory: Path = DEFAULT_DIR, *, force: bool = False) -> tuple[DevCerts, bool]:
    """(where the set is, whether it was written now). Idempotent unless ``force``."""
    certs = DevCerts(directory)
    present = [path for path in certs.files if path.exists()]
    if not force and len(present) == len(certs.files):
        return certs, False
    if not force and present:
        raise IncompleteSet(
            f"{directory} holds {', '.join(p.name for p in present)} but not the whole set; "
            "run again with --force to replace them all"
        )
    ca = make_ca()
    server = issue(
        ca,
        common_name="recommender",
        dns_names=SERVER_NAMES,
        ip_addresses=SERVER_ADDRESSES,
        server=True,
    )
    client = issue(ca, common_name=CLIENT_NAME, client=True)
    write_pair(ca, certs.ca, certs.ca_key)
    write_pair(server, certs.server_cert, certs.server_key)
    write_pair(client, certs.client_cert, certs.client_key)
    return certs, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/dev_certs.py",
        description="Make a development CA, a recommender server certificate and a site "
        "client certificate.",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="default: var/certs")
    parser.add_argument("--force", action="store_true", help="replace an existing set")
    args = parser.parse_args(argv)
    try:
        certs, written = write_dev_certs(args.dir, force=args.force)
    except IncompleteSet as exc:
        print(exc, file=sys.stderr)
        return 1
    if not written:
        print(f"{certs.directory}: certificates exist; --force replaces them")
        return 0
    print(f"wrote a CA, a server and a client certificate to {certs.directory}:")
    for path in certs.files:
        print(f"  {path.name}")
    print(
        "recommender: RECOMMENDER_TLS_CERT=server.pem RECOMMENDER_TLS_KEY=server-key.pem "
        "[RECOMMENDER_TLS_CLIENT_CA=ca.pem]\n"
        "site:        RECOMMENDER_TLS_CA=ca.pem "
        "[RECOMMENDER_TLS_CLIENT_CERT=client.pem RECOMMENDER_TLS_CLIENT_KEY=client-key.pem]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
