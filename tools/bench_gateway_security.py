"""Cost of the gateway's security plug-ins per request, and the SM2 library comparison behind them.

    .venv/bin/python tools/bench_gateway_security.py [--n 300]

Prints medians and p99 in microseconds for: x-tif headers, scheme B seal (sign + encrypt) and open
(decrypt + verify) of a settlement-sized message, the SM2+SM4 clientId variant, and raw SM2
sign/verify in gmssl-pyx (the library used) next to gmalg (the pure-Python alternative the
reference names), when gmalg is installed. One core, keys generated per run.
"""
from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import load_average, machine_description, percentile, pin_one_core  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1e6)
    xs.sort()
    return percentile(xs, 50), percentile(xs, 99)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="timed calls per case")
    args = ap.parse_args(argv)
    machine = machine_description()
    cpu = pin_one_core()
    print(f"# {machine}; pinned to CPU {cpu}; load {load_average()}")

    import gmssl_pyx

    from rules_engine.gateway.security import (
        RegionSecurity, SchemeB, Secret, Sm2Sm4, XTifAuth, compact_json, sm2_verify,
    )

    c_pub, c_priv = gmssl_pyx.sm2_key_generate()
    p_pub, p_priv = gmssl_pyx.sm2_key_generate()
    common = dict(app_id="0123456789ABCDEF0123456789ABCDEF", app_secret=Secret("A" * 32, "bench"))
    ours = SchemeB(private_key=Secret(c_priv, "bench"), public_key=c_pub, peer_public_key=p_pub, **common)
    theirs = SchemeB(private_key=Secret(p_priv, "bench"), public_key=p_pub, peer_public_key=c_pub, **common)
    # a 2207-sized business object: 20 fee-detail-like rows
    data = {"psn_no": "11000000000000000001", "mdtrt_id": "M" * 20, "medfee_sumamt": Decimal("1234.56"),
            "rows": [{"feedetl_sn": str(i), "det_item_fee_sumamt": Decimal("61.73"), "cnt": 2,
                      "hilist_name": "阿莫西林胶囊"} for i in range(20)]}
    payload = {"data": data}
    wire = ours.seal(payload)
    answer = compact_json(theirs.seal(payload)).encode()
    region = RegionSecurity(XTifAuth("p", Secret("t", "bench")), ours)
    client = Secret("ClientId16Bytes!", "bench")
    v_ours = Sm2Sm4(client_id=client, private_key=Secret(c_priv, "bench"), public_key=c_pub)
    v_theirs = Sm2Sm4(client_id=client, private_key=Secret(p_priv, "bench"), public_key=p_pub,
                      peer_public_key=c_pub, verify_response=True)
    envelope = {"infno": "2207", "input": payload}
    v_wire = v_ours.seal(envelope)
    msg = compact_json(payload).encode()
    rs = ours._signer.sign(msg)  # noqa: SLF001 - raw primitive timing

    cases = [
        ("x-tif headers", lambda: region.transport.headers()),
        ("scheme_b seal (sign+encrypt)", lambda: ours.seal(payload)),
        ("scheme_b open (decrypt+verify)", lambda: theirs.open(wire)),
        ("RegionSecurity.prepare (x_tif+scheme_b)", lambda: region.prepare(payload)),
        ("RegionSecurity.open (bytes in)", lambda: region.open(answer)),
        ("sm2_sm4 seal", lambda: v_ours.seal(envelope)),
        ("sm2_sm4 open (platform side, verify)", lambda: v_theirs.open(v_wire, field="input")),
        ("gmssl-pyx SM2 sign", lambda: ours._signer.sign(msg)),  # noqa: SLF001
        ("gmssl-pyx SM2 verify", lambda: sm2_verify(c_pub, msg, rs)),
    ]
    try:
        import gmalg

        g = gmalg.SM2(c_priv, b"1234567812345678", b"\x04" + c_pub)
        r, s = g.sign(msg)
        cases += [("gmalg SM2 sign (pure Python)", lambda: g.sign(msg)),
                  ("gmalg SM2 verify (pure Python)", lambda: g.verify(msg, r, s))]
    except ImportError:
        print("# gmalg not installed: pure-Python comparison skipped")

    results = {}
    print(f"{'case':44} {'p50 µs':>10} {'p99 µs':>10}")
    for name, fn in cases:
        n = args.n if not name.startswith("gmalg") else max(20, args.n // 10)
        fn()  # warm
        p50, p99 = timed(fn, n)
        results[name] = p50
        print(f"{name:44} {p50:10.1f} {p99:10.1f}")
    if "gmalg SM2 sign (pure Python)" in results:
        sign = results["gmalg SM2 sign (pure Python)"] / results["gmssl-pyx SM2 sign"]
        verify = results["gmalg SM2 verify (pure Python)"] / results["gmssl-pyx SM2 verify"]
        print(f"# gmalg / gmssl-pyx: sign ×{sign:.1f}, verify ×{verify:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
