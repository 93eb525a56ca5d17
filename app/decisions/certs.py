"""The webhook's own CA and serving certificate, decided purely: what the Secret holds
now, what it should hold, and when a new one may be served.

The Secret's keys: ca.crt (every CA still trusted, newest first), ca.key (the newest
CA's key), tls.crt and tls.key (the serving pair). Certificates are renewed at two
thirds of their life, so a replica that reads the Secret late still serves a valid one.

A new CA is added to the bundle beside the old one; a serving certificate under it is
issued only once kube-apiserver's caBundle has it (unless nothing valid is left to
serve), so a rotation never leaves the webhook with a certificate its caller does not
trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RENEW_AT = 2 / 3  # of a certificate's life
MAX_BACKDATE = dt.timedelta(seconds=60)  # for clocks a little behind ours
MAX_TRUSTED_CAS = 3
KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


@dataclass(frozen=True)
class Material:
    """The Secret's content, PEM; empty bytes where a key is missing."""

    ca_bundle: bytes = b""
    ca_key: bytes = b""
    cert: bytes = b""
    key: bytes = b""

    @classmethod
    def of(cls, data: dict[str, bytes]) -> "Material":
        return cls(*(data.get(k, b"") for k in KEYS))

    def data(self) -> dict[str, bytes]:
        return dict(zip(KEYS, (self.ca_bundle, self.ca_key, self.cert, self.key)))


@dataclass(frozen=True)
class Plan:
    material: Material
    renewed: tuple[str, ...]  # "ca", "cert": what this plan issued; empty when nothing changes
    waiting: str = ""  # why a due renewal waits


@dataclass(frozen=True)
class Lifetimes:
    cert: dt.timedelta
    ca: dt.timedelta


def plan(current: Material, hosts: tuple[str, ...], now: dt.datetime, lifetimes: Lifetimes,
         published: frozenset[bytes] | None) -> Plan:
    """What the Secret should hold at `now`. `published`: fingerprints of the CAs
    kube-apiserver trusts for the webhook (its caBundle), None when there is none to wait for."""
    renewed: list[str] = []
    bundle = [c for c in _certificates(current.ca_bundle) if now < _not_after(c)]
    ca, ca_key = _usable_ca(bundle, current.ca_key, now)
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _issue_ca(ca_key, now, lifetimes.ca)
        renewed.append("ca")
    trusted = [ca] + [c for c in bundle if c != ca][: MAX_TRUSTED_CAS - 1]
    serving = _serving(current, trusted, hosts, now)
    waiting = ""
    if serving is None or _due(serving, now):
        if serving is not None and published is not None and fingerprint(ca) not in published:
            waiting = "the new CA is not in the webhook's caBundle yet"
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            serving = _issue_serving(key, ca, ca_key, hosts, now, lifetimes.cert)
            renewed.append("cert")
            current = Material(current.ca_bundle, current.ca_key, _pem(serving), _key_pem(key))
    if not renewed:
        return Plan(current, (), waiting)
    material = Material(b"".join(map(_pem, trusted)), _key_pem(ca_key), current.cert, current.key)
    return Plan(material, tuple(renewed), waiting)


def fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


def fingerprints(bundle: bytes) -> frozenset[bytes]:
    return frozenset(map(fingerprint, _certificates(bundle)))


def not_after(pem: bytes) -> dt.datetime | None:
    """When the first certificate in pem expires; None when there is none."""
    found = _certificates(pem)
    return _not_after(found[0]) if found else None


def default_hosts(service: str, namespace: str) -> tuple[str, ...]:
    """The names kube-apiserver checks for a webhook that calls a Service."""
    return (f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")


def _certificates(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem) if pem else []
    except ValueError:
        return []


def _private_key(pem: bytes):
    try:
        return serialization.load_pem_private_key(pem, password=None) if pem else None
    except (ValueError, TypeError):
        return None


def _not_after(certificate: x509.Certificate) -> dt.datetime:
    return certificate.not_valid_after_utc


def _due(certificate: x509.Certificate, now: dt.datetime) -> bool:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return now >= start + (end - start) * RENEW_AT


def _same_key(certificate: x509.Certificate, key) -> bool:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return key is not None and key.public_key().public_bytes(encoding, public) == \
        certificate.public_key().public_bytes(encoding, public)


def _usable_ca(bundle: list[x509.Certificate], key_pem: bytes, now: dt.datetime):
    """The newest CA, with its key, while it has a third of its life left."""
    key = _private_key(key_pem)
    if not bundle or not _same_key(bundle[0], key) or _due(bundle[0], now):
        return None, None
    return bundle[0], key


def _serving(current: Material, trusted: list[x509.Certificate], hosts: tuple[str, ...],
             now: dt.datetime) -> x509.Certificate | None:
    """The serving certificate, if it is still one to serve: its key, its names, valid
    now and signed by a CA that stays trusted."""
    found = _certificates(current.cert)
    if not found:
        return None
    certificate = found[0]
    if not (certificate.not_valid_before_utc <= now < _not_after(certificate)):
        return None
    if not _same_key(certificate, _private_key(current.key)) or _names(certificate) != _wanted(hosts):
        return None
    return certificate if any(_issued_by(certificate, ca) for ca in trusted) else None


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _names(certificate: x509.Certificate) -> frozenset:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(names.get_values_for_type(x509.DNSName)) | frozenset(
        names.get_values_for_type(x509.IPAddress))


def _wanted(hosts: tuple[str, ...]) -> frozenset:
    return frozenset(_host(h) for h in hosts)


def _host(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return host


def _window(now: dt.datetime, life: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    return now - min(MAX_BACKDATE, life / 10), now + life


def _issue_ca(key, now: dt.datetime, life: dt.timedelta) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"spot-extender-ca-{int(now.timestamp())}")])
    start, end = _window(now, life)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_serving(key, ca: x509.Certificate, ca_key, hosts: tuple[str, ...], now: dt.datetime,
                   life: dt.timedelta) -> x509.Certificate:
    start, end = _window(now, life)
    names = [x509.IPAddress(h) if not isinstance(h, str) else x509.DNSName(h) for h in map(_host, hosts)]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(min(end, _not_after(ca)))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
