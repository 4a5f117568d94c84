"""TLS through uvicorn's own options (--ssl-certfile / --ssl-keyfile), as docs/service.md describes."""
from __future__ import annotations

import shutil
import ssl
import subprocess

import httpx
import pytest
from service_helpers import Server, auth, claim, make_keys, make_regions


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_https_with_a_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    keys_file, keys = make_keys(tmp_path)
    srv = Server(tmp_path, make_regions(tmp_path), keys_file=keys_file, tls=ssl.create_default_context(cafile=str(cert)),
                 args=["--watch-interval", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]).start()
    try:
        r = httpx.post(srv.url + "/v1/settle", json=claim(), headers=auth(keys["settle"]), verify=srv.tls, timeout=30)
        assert r.status_code == 200 and r.json()["setlinfo"]["hifp_pay"] > 0
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered on the TLS port
            httpx.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=2)
    finally:
        srv.stop()
