"""TLS endpoints (``-e ssl:...``): HTTPS and WSS, with the ALPN every browser offers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect as connect_async

from tests.redis_server import free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(start_server, certificate):
    cert_path, key_path = certificate
    port = free_port()
    server = start_server(["-e", f"ssl:port={port}:interface=127.0.0.1:privateKey={key_path}"
                                 f":certKey={cert_path}"])
    server.wait_for_output(rf"Listening on 127\.0\.0\.1:{port}\b")
    return port, cert_path


@pytest.mark.parametrize("offered", [None, ["http/1.1"], ["h2", "http/1.1"]])
def test_tls_handshake_with_and_without_alpn(tls_server, offered):
    port, cert_path = tls_server
    context = ssl.create_default_context(cafile=cert_path)
    if offered:
        context.set_alpn_protocols(offered)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        # Browsers offer h2 first: we speak HTTP/1.1 (and WebSocket over it) only.
        assert tls.selected_alpn_protocol() == ("http/1.1" if offered else None)


def test_https_request_carries_the_https_scheme(tls_server):
    port, cert_path = tls_server
    response = requests.get(f"https://127.0.0.1:{port}/over-tls", verify=cert_path, timeout=5)
    assert response.status_code == 200
    summary = response.json()
    assert summary["scheme"] == "https"
    assert summary["path"] == "/over-tls"


def test_wss_socket_carries_the_wss_scheme(tls_server):
    port, cert_path = tls_server
    context = ssl.create_default_context(cafile=cert_path)
    context.set_alpn_protocols(["http/1.1"])  # as browsers do

    async def talk() -> tuple[dict, str]:
        # The asyncio client, not the sync one: the sync client reads the socket in a thread
        # of its own while the caller writes, and one SSL object used from two threads at
        # once is undefined in OpenSSL. With TLS 1.3 the server's session tickets arrive
        # after the handshake, while the upgrade request is being written, and about one
        # connection in 300 lost its request that way (reproduced with Twisted's stock
        # transport too; never with TLS 1.2, which has no post-handshake messages).
        async with asyncio.timeout(10):
            async with connect_async(f"wss://127.0.0.1:{port}/ws/info", ssl=context) as ws:
                info = json.loads(await ws.recv())
            async with connect_async(f"wss://127.0.0.1:{port}/ws/echo", ssl=context) as ws:
                await ws.send("secret")
                return info, await ws.recv()

    info, echoed = asyncio.run(talk())
    assert info["scheme"] == "wss"
    assert echoed == "secret"
