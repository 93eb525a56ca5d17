import asyncio
import shutil
import ssl
import subprocess

import pytest
from aiohttp import ClientSession, web

from spot_extender.core.settings import Settings, SettingsError
from spot_extender.serving.tls import ReloadingTLS


def make_cert(directory, name):
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def served_cert_is(port, ca_file) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        async with ClientSession() as session:
            async with session.get(f"https://127.0.0.1:{port}/", ssl=context) as resp:
                return resp.status == 200
    except Exception:  # noqa: BLE001 - a verification failure means: not this certificate
        return False


async def test_serves_https_and_picks_up_a_rotated_certificate(tmp_path):
    first_cert, first_key = make_cert(tmp_path, "first")
    second_cert, second_key = make_cert(tmp_path, "second")
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(first_cert, live_cert)
    shutil.copy(first_key, live_key)
    tls = ReloadingTLS(str(live_cert), str(live_key))
    app = web.Application()
    async def ok(request):
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    watcher = asyncio.create_task(tls.watch(0.05))
    try:
        assert await served_cert_is(port, first_cert)
        assert not await served_cert_is(port, second_cert)
        shutil.copy(second_cert, live_cert)
        shutil.copy(second_key, live_key)
        for _ in range(100):
            if await served_cert_is(port, second_cert):
                break
            await asyncio.sleep(0.05)
        assert await served_cert_is(port, second_cert)
    finally:
        watcher.cancel()
        await runner.cleanup()


def test_a_bad_new_pair_is_refused_and_tried_again_until_a_good_one_comes(tmp_path):
    cert, key = make_cert(tmp_path, "one")
    good = cert.read_bytes()
    tls = ReloadingTLS(str(cert), str(key))
    assert tls.reload_if_changed() is False
    cert.write_text("not a certificate")
    for _ in range(2):  # the old chain stays loaded; every check tries the files again
        with pytest.raises(ssl.SSLError):
            tls.reload_if_changed()
    cert.write_bytes(good)
    assert tls.reload_if_changed() is True


def test_settings_need_both_files_and_existing_ones(tmp_path):
    cert, key = make_cert(tmp_path, "x")
    assert Settings(tls_cert_file=str(cert), tls_key_file=str(key)).tls_cert_file == str(cert)
    with pytest.raises(SettingsError, match="go together"):
        Settings(tls_cert_file=str(cert))
    # A missing file is refused where the value is read: see test_settings' table.


async def test_verbs_and_debug_require_a_client_certificate_when_a_client_ca_is_set(tmp_path):
    import orjson

    from spot_extender.assembly import build
    from spot_extender.core.supervisor import Supervisor
    from spot_extender.serving.server import build_app
    from tests.helpers.ports import free_port

    server_cert, server_key = make_cert(tmp_path, "server")
    client_cert, client_key = make_cert(tmp_path, "scheduler")  # self-signed: its own CA
    stranger_cert, stranger_key = make_cert(tmp_path, "stranger")
    settings = Settings(tls_cert_file=str(server_cert), tls_key_file=str(server_key),
                        tls_client_ca_file=str(client_cert))
    parts = build(settings)
    tls = ReloadingTLS(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    runner = web.AppRunner(build_app(parts.extender, parts.webhook, parts.index, parts.status, parts.fleet, Supervisor(parts.metrics),
                                     parts.metrics, settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.context).start()
    body = orjson.dumps({"Pod": {"metadata": {"name": "p"}}, "NodeNames": []})

    def context(pair=None):
        ctx = ssl.create_default_context(cafile=str(server_cert))
        if pair:
            ctx.load_cert_chain(*map(str, pair))
        return ctx

    async def status(method, path, pair=None):
        try:
            async with ClientSession() as session:
                async with session.request(method, f"https://127.0.0.1:{port}{path}", data=body,
                                           ssl=context(pair)) as resp:
                    return resp.status, await resp.text()
        except Exception as exc:  # noqa: BLE001 - a refused handshake
            return None, repr(exc)

    try:
        for path in ("/filter", "/prioritize"):
            code, text = await status("POST", path)
            assert code == 403 and "client certificate" in text
            assert (await status("POST", path, (client_cert, client_key)))[0] == 200
        assert (await status("GET", "/debug/workloads"))[0] == 403
        assert (await status("GET", "/debug/workloads", (client_cert, client_key)))[0] == 200
        for path in ("/healthz", "/metrics"):
            assert (await status("GET", path))[0] == 200
        assert (await status("GET", "/readyz"))[0] == 503  # open, and honest: not synced
        # A certificate the CA did not sign fails the handshake itself.
        assert (await status("POST", "/filter", (stranger_cert, stranger_key)))[0] is None
    finally:
        await runner.cleanup()


async def test_a_self_managed_context_serves_each_installed_pair_and_reloads_its_client_ca(tmp_path, unused_tcp_port):
    one, one_key = make_cert(tmp_path, "one")
    two, two_key = make_cert(tmp_path, "two")
    client_ca, _ = make_cert(tmp_path, "client-ca")
    tls = ReloadingTLS.self_managed(str(client_ca))
    assert not tls.installed
    assert tls.install(one.read_bytes(), one_key.read_bytes()) is True
    assert tls.install(one.read_bytes(), one_key.read_bytes()) is False  # the one served already
    async def ok(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port, ssl_context=tls.context).start()
    try:
        assert await served_cert_is(unused_tcp_port, one)
        tls.install(two.read_bytes(), two_key.read_bytes())
        assert await served_cert_is(unused_tcp_port, two) and not await served_cert_is(unused_tcp_port, one)
        with pytest.raises(ssl.SSLError):
            tls.install(b"not a certificate", two_key.read_bytes())
        assert await served_cert_is(unused_tcp_port, two)  # a bad pair leaves the last good one
        other_ca, _ = make_cert(tmp_path, "other-ca")
        shutil.copy(other_ca, client_ca)  # a changed client CA file: loaded on top, no certificate file needed
        assert tls.reload_if_changed() is True
    finally:
        await runner.cleanup()
