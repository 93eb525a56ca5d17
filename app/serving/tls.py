"""HTTPS serving with a certificate that is reloaded when its files change.

One SSLContext lives as long as the server; load_cert_chain on it again makes new
handshakes use the new certificate, so rotation (cert-manager, a renewed Secret)
needs no restart and drops no connection.

With a client CA, handshakes ask for a client certificate and verify any that is
offered (CERT_OPTIONAL: probes and Prometheus connect without one); the server then
refuses the routes that need one to a peer without a verified certificate. A changed
CA file is loaded on top: CAs are added, never removed, until a restart.

With a self-managed certificate (app/serving/cert_rotation.py) there are no files to watch: the
context starts empty, and `install` loads each new pair as it comes from the Secret.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile

from ..core import logs

log = logs.get("tls")


class ReloadFailed(Exception):
    """The changed files could not be loaded; the previous certificate stays in use."""


class ReloadingTLS:
    def __init__(self, cert_file: str, key_file: str, client_ca_file: str = ""):
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._files_stamp()
        self._installed = b""
        if cert_file:
            self.context.load_cert_chain(cert_file, key_file)
        if client_ca_file:
            self.context.verify_mode = ssl.CERT_OPTIONAL
            self.context.load_verify_locations(cafile=client_ca_file)

    @property
    def _files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca_file) if f)

    def _files_stamp(self) -> tuple:
        return tuple((os.stat(f).st_mtime_ns, os.stat(f).st_size) for f in self._files)

    @classmethod
    def self_managed(cls, client_ca_file: str = "") -> "ReloadingTLS":
        """No certificate until `install`: handshakes fail, so probes keep the pod unready."""
        return cls("", "", client_ca_file)

    @property
    def installed(self) -> bool:
        return bool(self._installed)

    def install(self, cert: bytes, key: bytes) -> bool:
        """Serve this PEM pair from the next handshake on; False when it is the one served.
        ssl loads from files only: they live in a private directory just for the load."""
        if cert + key == self._installed:
            return False
        with tempfile.TemporaryDirectory(prefix="spot-extender-tls-") as directory:
            cert_path, key_path = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
            for path, pem in ((cert_path, cert), (key_path, key)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    out.write(pem)
            self.context.load_cert_chain(cert_path, key_path)  # raises on a bad pair: the old one stays
        self._installed = cert + key
        return True

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; a bad pair keeps the old certificate."""
        stamp = self._files_stamp()
        if stamp == self._stamp:
            return False
        if self.cert_file:  # a self-managed pair comes through install, not files
            self.context.load_cert_chain(self.cert_file, self.key_file)  # raises on a bad pair: old one stays
        if self.client_ca_file:
            self.context.load_verify_locations(cafile=self.client_ca_file)
        self._stamp = stamp
        log.info("tls certificate reloaded", extra={"cert_file": self.cert_file})
        return True

    async def watch(self, interval: float) -> None:
        """Runs under the supervisor, which logs, counts and retries a failed reload."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ReloadFailed(f"{self.cert_file}: {exc}; still serving the previous certificate") from exc

