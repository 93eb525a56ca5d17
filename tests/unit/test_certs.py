"""Self-managed webhook certificates: the pure plan (app/decisions/certs.py) and the loop that keeps
the Secret, the served pair and the caBundle in step (app/serving/cert_rotation.py)."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import ssl

import pytest
from cryptography import x509

from spot_extender.api import StatusError
from spot_extender.core.metrics import Metrics
from spot_extender.decisions import certs
from spot_extender.serving.cert_rotation import CertificateUnavailable, CertRotation
from spot_extender.serving.tls import ReloadingTLS

HOSTS = ("spot-extender.kube-system.svc", "spot-extender.kube-system.svc.cluster.local", "10.96.200.200")
LIFE = certs.Lifetimes(cert=dt.timedelta(days=90), ca=dt.timedelta(days=900))
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def cas(material: certs.Material) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(material.ca_bundle)


def serving(material: certs.Material) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.cert)


def signer(material: certs.Material) -> x509.Certificate:
    """The CA in the bundle that signed the serving certificate."""
    cert = serving(material)
    for ca in cas(material):
        try:
            cert.verify_directly_issued_by(ca)
            return ca
        except Exception:  # noqa: BLE001 - not this one
            continue
    raise AssertionError("no CA in the bundle signed the serving certificate")


@pytest.fixture(scope="module")
def fresh() -> certs.Material:
    return certs.plan(certs.Material(), HOSTS, T0, LIFE, None).material


def published(material: certs.Material) -> frozenset[bytes]:
    return certs.fingerprints(material.ca_bundle)


def test_an_empty_secret_gets_a_ca_and_a_serving_certificate_for_the_hosts(fresh):
    plan = certs.plan(certs.Material(), HOSTS, T0, LIFE, frozenset())  # nothing published: nothing to wait for
    assert plan.renewed == ("ca", "cert")
    cert = serving(plan.material)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == set(HOSTS[:2])
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.96.200.200"]
    assert signer(plan.material) == cas(plan.material)[0]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*_files(plan.material))  # the key belongs to the certificate


@pytest.mark.parametrize("when, renewed", [
    (day(1), ()),
    (day(59), ()),  # before 2/3 of 90 days
    (day(61), ("cert",)),
    (day(91), ("cert",)),  # expired: issued anew
])
def test_the_serving_certificate_is_renewed_at_two_thirds_of_its_life(fresh, when, renewed):
    plan = certs.plan(fresh, HOSTS, when, LIFE, published(fresh))
    assert plan.renewed == renewed
    if renewed:
        assert serving(plan.material).not_valid_before_utc <= when < serving(plan.material).not_valid_after_utc
        assert signer(plan.material) == cas(fresh)[0]  # same CA
    else:
        assert plan.material == fresh


def test_a_due_ca_is_renewed_beside_the_old_one_and_the_certificate_waits_until_kube_apiserver_trusts_it(fresh):
    # Day 605: the CA (900 days) is past 2/3; keep serving until the serving certificate is due.
    material = fresh
    for when in (day(60.5), day(121), day(181.5), day(242), day(302.5), day(363), day(423.5), day(484), day(544.5)):
        material = certs.plan(material, HOSTS, when, LIFE, published(material)).material
    old_ca = cas(material)[0]
    rotated = certs.plan(material, HOSTS, day(601), LIFE, published(material))
    assert rotated.renewed == ("ca",)
    assert cas(rotated.material)[1] == old_ca and cas(rotated.material)[0] != old_ca
    assert rotated.material.cert == material.cert  # still signed by the old CA, which stays trusted
    # The serving certificate falls due while kube-apiserver still has only the old CA: it waits.
    waiting = certs.plan(rotated.material, HOSTS, day(606), LIFE, published(material))
    assert waiting.renewed == () and "caBundle" in waiting.waiting
    # Once the caBundle has the new CA, the next certificate comes from it.
    renewed = certs.plan(rotated.material, HOSTS, day(606), LIFE, published(rotated.material))
    assert renewed.renewed == ("cert",) and signer(renewed.material) == cas(rotated.material)[0]


def test_with_nothing_valid_left_to_serve_a_certificate_is_issued_without_waiting(fresh):
    plan = certs.plan(fresh, HOSTS, day(700), LIFE, frozenset())  # CA due, certificate long expired
    assert plan.renewed == ("ca", "cert")


@pytest.mark.parametrize("change", ["hosts", "key", "garbage-ca", "garbage-cert", "foreign-ca"])
def test_a_pair_that_does_not_fit_is_replaced(fresh, change):
    other = certs.plan(certs.Material(), HOSTS, T0, LIFE, None).material
    material, hosts = fresh, HOSTS
    if change == "hosts":
        hosts = HOSTS[:2]
    elif change == "key":
        material = certs.Material(fresh.ca_bundle, fresh.ca_key, fresh.cert, other.key)
    elif change == "garbage-ca":
        material = certs.Material(b"not a certificate", b"nor a key", fresh.cert, fresh.key)
    elif change == "garbage-cert":
        material = certs.Material(fresh.ca_bundle, fresh.ca_key, b"-----BEGIN CERTIFICATE-----\nxx", fresh.key)
    else:  # a pair some other CA signed
        material = certs.Material(fresh.ca_bundle, fresh.ca_key, other.cert, other.key)
    plan = certs.plan(material, hosts, day(1), LIFE, published(fresh))
    assert "cert" in plan.renewed
    assert signer(plan.material) == cas(plan.material)[0]


def test_expired_cas_leave_the_bundle_and_it_stays_small(fresh):
    material = fresh
    when = T0
    for _ in range(40):  # many CA rotations, a day of life each
        short = certs.Lifetimes(cert=dt.timedelta(hours=4), ca=dt.timedelta(days=1))
        when += dt.timedelta(hours=3)
        material = certs.plan(material, HOSTS, when, short, None).material
    bundle = cas(material)
    assert 1 <= len(bundle) <= certs.MAX_TRUSTED_CAS
    assert all(ca.not_valid_after_utc > when for ca in bundle)


# ---- the loop, against a fake API -------------------------------------------------

class FakeApi:
    """A Secret and a MutatingWebhookConfiguration with resourceVersions, as kube-apiserver keeps them."""

    def __init__(self, secret: bool = True):
        self.objects: dict[str, dict] = {}
        if secret:
            self.objects["secrets"] = {"metadata": {"name": "tls", "namespace": "kube-system", "resourceVersion": "1"}}
        self.objects["mutatingwebhookconfigurations"] = {
            "metadata": {"name": "spot-extender", "resourceVersion": "1"},
            "webhooks": [{"name": "a", "clientConfig": {"service": {"name": "spot-extender"}}},
                         {"name": "b", "clientConfig": {"service": {"name": "spot-extender"}}}]}
        self.writes = 0
        self.between_read_and_write = None  # a replica's pass, run in the middle of another's

    async def get(self, resource, namespace, name, timeout):
        obj = self.objects.get(resource.plural)
        if obj is None:
            raise StatusError(404, f'{resource.plural} "{name}" not found')
        return copy.deepcopy(obj)

    async def replace(self, resource, obj, timeout):
        if self.between_read_and_write is not None:
            interleaved, self.between_read_and_write = self.between_read_and_write, None
            await interleaved()
        stored = self.objects[resource.plural]
        if obj["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]:
            raise StatusError(409, "the object has been modified")
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.objects[resource.plural] = obj
        self.writes += 1
        return copy.deepcopy(obj)


def rotation(api: FakeApi, clock=lambda: T0) -> CertRotation:
    return CertRotation(api, ReloadingTLS.self_managed(), Metrics(), "kube-system", "tls", "spot-extender", HOSTS,
                        LIFE, 5.0, clock=clock)


async def test_a_pass_fills_the_secret_serves_its_pair_and_publishes_the_ca():
    api = FakeApi()
    replica = rotation(api)
    await replica.sync()
    data = {k: base64.b64decode(v) for k, v in api.objects["secrets"]["data"].items()}
    assert replica.tls.installed and replica.tls._installed == data["tls.crt"] + data["tls.key"]
    for hook in api.objects["mutatingwebhookconfigurations"]["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    writes = api.writes
    await replica.sync()  # nothing due: no write
    assert api.writes == writes


async def test_two_replicas_racing_at_start_serve_one_certificate():
    api = FakeApi()
    first, second = rotation(api), rotation(api)
    api.between_read_and_write = second.sync  # the second writes between the first's read and write
    await first.sync()
    assert first.tls._installed == second.tls._installed
    data = api.objects["secrets"]["data"]
    assert first.tls._installed == base64.b64decode(data["tls.crt"]) + base64.b64decode(data["tls.key"])
    assert first.metrics.certificates_issued.labels("cert")._value.get() == 0  # it lost, and served the winner's


async def test_a_missing_secret_is_a_clear_error_naming_how_to_create_it():
    with pytest.raises(CertificateUnavailable, match="kubectl -n kube-system create secret generic tls"):
        await rotation(FakeApi(secret=False)).sync()


async def test_the_interval_follows_the_certificate_life():
    assert rotation(FakeApi()).interval == 60.0
    short = CertRotation(FakeApi(), ReloadingTLS.self_managed(), Metrics(), "ns", "tls", "", HOSTS,
                         certs.Lifetimes(dt.timedelta(seconds=30), dt.timedelta(seconds=90)), 5.0)
    assert short.interval == 3.0
    await short.sync()  # no configuration to publish to: the pair is served all the same
    assert short.tls.installed
    await asyncio.sleep(0)


def _files(material: certs.Material):
    import tempfile
    from pathlib import Path

    directory = Path(tempfile.mkdtemp())
    (directory / "c").write_bytes(material.cert)
    (directory / "k").write_bytes(material.key)
    return str(directory / "c"), str(directory / "k")
