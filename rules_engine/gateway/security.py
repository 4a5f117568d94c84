"""Security plug-ins for the gateway, chosen per region by name in gateway.yaml.

Two independent layers, because real deployments combine them freely (reference/gateway.md §1.2, §2):

- **transport authentication** — who we are to the network in front of the platform: nothing, the
  TIF gateway's ``x-tif-*`` SHA-256 headers, a bearer token (static, or fetched with an OAuth2
  password grant and cached), or an API-key header. It only adds HTTP headers.
- **message security** — what protects the message itself: nothing; scheme B of the
  移动支付 / 电子凭证 open API (sorted ``key=value`` string + appSecret, SM3withSM2 with a configurable
  user id, SM4-ECB ``encData`` under a key derived from appId/appSecret); or the SM2-sign + SM4-encrypt
  variant keyed by clientId (``cainfo`` / ``input``).

The interface an HTTP client (sync or async httpx) needs is `RegionSecurity`::

    prepared = await security.aprepare(payload)      # headers + the exact bytes to send
    resp = await client.post(url, content=prepared.body, headers=prepared.headers)
    if resp.status_code == 401: security.unauthorized()   # drop a cached token
    message = security.open(resp.content)              # verify + decrypt, or SecurityError

Call ``prepare`` once per attempt: x-tif headers and scheme-B timestamps are single-use.
``open`` raising `SecurityError` means "this answer cannot be trusted", which for a settlement is an
*unknown* outcome (go to 冲正), never a definite failure.

Keys are held in `Secret` objects whose repr is their *source* ("env:NAME"), never their value;
nothing in this module logs or formats key material. Libraries: pyca/cryptography for SM3 and SM4
(OpenSSL, constant-time C), gmssl-pyx (GmSSL 3 C extension, imported on first SM2 use) for SM2, fed
SM3(Z‖M) with Z computed once per key and signer id; see docs/gateway-security.md for the comparison.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import json
import logging
import math
import secrets as _secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Awaitable, Callable, ClassVar, Iterable, Mapping

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

log = logging.getLogger(__name__)

#: GB/T 32918 / GM/T 0009 default signer id; the id BouncyCastle, sm-crypto and GmSSL use when none is
#: given, and the one both captured portal requests verify with (reference/gateway.md §2.1).
DEFAULT_USER_ID = "1234567812345678"
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_DEPTH = 64


# --------------------------------------------------------------------------- errors and secrets

class SecurityError(Exception):
    """A message or key that failed a security step. `code` is stable (E-SEC-…), `message` readable.

    Messages never contain key material; they name the step, the setting that decides it and what to
    check, because the usual causes (wrong key, wrong user id, wrong appSecret) all look alike.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Secret:
    """A secret value that says where it came from but never what it is.

    `repr`, `str` and f-strings show ``Secret(env:NAME)``; pickling is refused so a secret cannot
    slip into an outbox row or a cache file. `reveal()` is the one explicit way to the value.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str | bytes, source: str = "inline"):
        self._value = value
        self.source = source

    def reveal(self) -> str | bytes:
        return self._value

    def text(self) -> str:
        v = self._value
        return v.decode("utf-8") if isinstance(v, bytes) else v

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickle, copyreg
        raise TypeError("a Secret cannot be pickled or serialised")

    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo: dict) -> "Secret":
        return self


def scrub(text: str, *values: Secret | str | bytes | None) -> str:
    """Replace every occurrence of the given secret values in `text` by '***' (for error messages
    built from third-party exceptions, which may quote a request)."""
    for v in values:
        raw = v.reveal() if isinstance(v, Secret) else v
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if raw and len(raw) >= 4:
            text = text.replace(raw, "***")
    return text


# --------------------------------------------------------------------------- canonical JSON

def _decimal_text(d: Decimal) -> str:
    if not d.is_finite():
        raise SecurityError("E-SEC-FORMAT", f"{d} is not a JSON number")
    return format(d, "f")


def _float_text(f: float) -> str:
    if not math.isfinite(f):
        raise SecurityError("E-SEC-FORMAT", f"{f} is not a JSON number")
    return repr(f)


def compact_json(value: Any, *, ensure_ascii: bool = False) -> str:
    """Compact JSON (no spaces), keys in insertion order, `Decimal` written as its exact text.

    Why not `json.dumps`: it cannot write a Decimal as a number, and the signed text of a number must
    equal its text in the body (a verifier parses the body and stringifies what it finds), so money
    stays exact from the engine to the wire: Decimal('12.50') is sent and signed as 12.50.
    """
    out: list[str] = []
    _write_json(value, out.append, ensure_ascii, 0)
    return "".join(out)


def _write_json(v: Any, w: Callable[[str], Any], ascii_: bool, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise SecurityError("E-SEC-FORMAT", f"message nested deeper than {_MAX_DEPTH} levels")
    if v is None:
        w("null")
    elif v is True:
        w("true")
    elif v is False:
        w("false")
    elif isinstance(v, str):
        w(json.dumps(v, ensure_ascii=ascii_))
    elif isinstance(v, int):
        w(str(int(v)))
    elif isinstance(v, Decimal):
        w(_decimal_text(v))
    elif isinstance(v, float):
        w(_float_text(v))
    elif isinstance(v, Mapping):
        w("{")
        first = True
        for k, x in v.items():
            if not isinstance(k, str):
                raise SecurityError("E-SEC-FORMAT", f"JSON keys are text; found {type(k).__name__} {k!r}")
            if not first:
                w(",")
            first = False
            w(json.dumps(k, ensure_ascii=ascii_))
            w(":")
            _write_json(x, w, ascii_, depth + 1)
        w("}")
    elif isinstance(v, (list, tuple)):
        w("[")
        for i, x in enumerate(v):
            if i:
                w(",")
            _write_json(x, w, ascii_, depth + 1)
        w("]")
    else:
        raise SecurityError("E-SEC-FORMAT", f"a {type(v).__name__} cannot be written as JSON")


def parse_json_body(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a response body into a dict; decimals become `Decimal` so money keeps its exact text
    (both for the signature check and for the caller)."""
    if isinstance(body, Mapping):
        return dict(body)
    if isinstance(body, (bytes, bytearray)):
        if len(body) > MAX_BODY_BYTES:
            raise SecurityError("E-SEC-FORMAT", f"body of {len(body):,} bytes exceeds {MAX_BODY_BYTES:,}")
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise SecurityError("E-SEC-FORMAT", f"body is not UTF-8 text (byte {e.start})") from None
    try:
        value = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError) as e:
        raise SecurityError("E-SEC-FORMAT", f"body is not JSON: {str(e)[:120]}") from None
    if not isinstance(value, dict):
        raise SecurityError("E-SEC-FORMAT", f"body is a JSON {type(value).__name__}, expected an object")
    return value


# --------------------------------------------------------------------------- scheme-B signing string

SIGN_EXCLUDE = frozenset({"signData", "encData", "extra"})


def _key_order(mode: str) -> Callable[[str], Any]:
    if mode == "case_insensitive":  # Java String.CASE_INSENSITIVE_ORDER (reference S5)
        return lambda k: k.lower()
    return lambda k: k  # ordinal, as JavaScript's sort() and C# ordinal (S4, S6)


def _kept(v: Any) -> bool:
    """Values the SDK drops before signing: null, empty string, empty array."""
    return not (v is None or (isinstance(v, str) and v == "") or (isinstance(v, (list, tuple)) and not v))


def _scalar_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, Decimal):
        return _decimal_text(v)
    if isinstance(v, float):
        return _float_text(v)
    raise SecurityError("E-SEC-FORMAT", f"a {type(v).__name__} cannot be signed")


def _canonical(v: Any, order: Callable[[str], Any], depth: int = 0) -> Any:
    """The signed form of a nested value: maps sorted by key with empties dropped, scalars as text
    (numbers quoted, as the NHSA SDK's treeParams and the portal do), arrays in their order."""
    if depth > _MAX_DEPTH:
        raise SecurityError("E-SEC-FORMAT", f"message nested deeper than {_MAX_DEPTH} levels")
    if isinstance(v, Mapping):
        return {k: _canonical(v[k], order, depth + 1) for k in sorted(v, key=order) if _kept(v[k])}
    if isinstance(v, (list, tuple)):
        return [_canonical(x, order, depth + 1) for x in v]
    if v is None:  # only reachable inside an array (maps drop nulls): kept, so positions keep their meaning
        return None
    return _scalar_text(v)


def signing_string(message: Mapping[str, Any], app_secret: str, *, key_order: str = "ordinal",
                   exclude: Iterable[str] = SIGN_EXCLUDE) -> str:
    """The text that scheme B signs: ``k=v&…&key=<appSecret>`` over the *plain* message.

    Steps (reference/gateway.md §2.1, verified on two captured requests): drop signData/encData/extra
    and empty values, render each value (text as is; objects as sorted compact JSON of the canonical
    form), sort by key, join with '&', append ``&key=<appSecret>``.
    """
    order = _key_order(key_order)
    skip = frozenset(exclude)
    parts = []
    for k in sorted((k for k in message if k not in skip and _kept(message[k])), key=order):
        v = message[k]
        if isinstance(v, (Mapping, list, tuple)):
            text = compact_json(_canonical(v, order))
        else:
            text = _scalar_text(v)
        parts.append(f"{k}={text}")
    parts.append(f"key={app_secret}")
    return "&".join(parts)


# --------------------------------------------------------------------------- SM3 / SM4 (pyca/cryptography)

def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def sm4_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7 padding: what every copy of the NHSA SDK uses (ECB is their choice, not ours)."""
    if len(key) != 16:
        raise SecurityError("E-SEC-KEY", f"an SM4 key is 16 bytes, this one is {len(key)}")
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def sm4_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    if len(key) != 16:
        raise SecurityError("E-SEC-KEY", f"an SM4 key is 16 bytes, this one is {len(key)}")
    if not ciphertext or len(ciphertext) % 16:
        raise SecurityError("E-SEC-DECRYPT", f"ciphertext of {len(ciphertext)} bytes is not a whole number "
                                             "of 16-byte SM4 blocks (truncated or altered)")
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise SecurityError("E-SEC-DECRYPT", "decryption gave invalid PKCS#7 padding: the data was altered "
                                             "or encrypted under another key (check appId/appSecret)") from None


def derive_scheme_b_key(app_id: str, app_secret: str) -> bytes:
    """Scheme B's data key: SM4-ECB/PKCS#7 of appSecret under the first 16 characters of appId,
    upper-case hex, first 16 characters, taken as ASCII bytes (not hex-decoded)."""
    if len(app_id) < 16:
        raise SecurityError("E-SEC-KEY", f"appId must have at least 16 characters, it has {len(app_id)}")
    ct = sm4_ecb_encrypt(app_id[:16].encode("utf-8"), app_secret.encode("utf-8"))
    return ct.hex().upper()[:16].encode("ascii")


# --------------------------------------------------------------------------- SM2 (gmssl-pyx)

@lru_cache(maxsize=1)
def _gm() -> Any:
    """gmssl-pyx, imported on first SM2 use: transport plug-ins and the 'none' scheme work without it."""
    try:
        import gmssl_pyx
    except ImportError as e:
        raise SecurityError("E-SEC-LIBRARY", f"SM2 needs the gmssl-pyx package ({e}); install it with "
                                             "'pip install gmssl-pyx' (wheels: Linux x86_64, Windows x64)") from None
    return gmssl_pyx


def _decode_key_text(text: str | bytes, fmt: str, lengths_hex: tuple[int, ...], what: str) -> bytes:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SecurityError("E-SEC-KEY", f"{what} is not text (expected Base64 or hex)") from None
    t = "".join(text.split())
    if "-----BEGIN" in text:
        raise SecurityError("E-SEC-KEY", f"{what} is PEM; give the raw key as Base64 or hex "
                                         "(the NHSA channels distribute it that way)")
    is_hex = len(t) in lengths_hex and all(c in "0123456789abcdefABCDEF" for c in t)
    if fmt == "hex" or (fmt == "auto" and is_hex):
        try:
            return bytes.fromhex(t)
        except ValueError:
            raise SecurityError("E-SEC-KEY", f"{what} is not valid hex") from None
    try:
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        raise SecurityError("E-SEC-KEY", f"{what} is neither Base64 nor hex of the expected length") from None


def parse_sm2_private_key(text: str | bytes, fmt: str = "auto") -> bytes:
    """A private key as 32 bytes, from Base64 or hex of the raw scalar d (a leading 0x00 byte, as in
    Java's BigInteger encoding — 33 bytes — is accepted)."""
    raw = _decode_key_text(text, fmt, (64, 66), "SM2 private key")
    if len(raw) == 33 and raw[0] == 0:
        raw = raw[1:]
    if len(raw) != 32:
        raise SecurityError("E-SEC-KEY", f"an SM2 private key is 32 bytes, this one decodes to {len(raw)}")
    d = int.from_bytes(raw, "big")
    if not 0 < d < SM2_N - 1:
        raise SecurityError("E-SEC-KEY", "the SM2 private key is out of range for the curve")
    return raw


def parse_sm2_public_key(text: str | bytes, fmt: str = "auto") -> bytes:
    """A public key as 64 bytes X‖Y, from Base64 or hex of 04‖X‖Y, X‖Y or a compressed point;
    checked to lie on the SM2 curve."""
    if fmt == "raw" and isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
    else:
        raw = _decode_key_text(text, fmt, (66, 128, 130), "SM2 public key")
    try:
        return _gm().normalize_sm2_public_key(bytes(raw))
    except _gm().InvalidValueError:
        raise SecurityError("E-SEC-KEY", f"the SM2 public key ({len(raw)} bytes) is not a point on the "
                                         "SM2 curve; expected 04‖X‖Y (65 bytes), X‖Y (64) or compressed (33)") from None


_SM2_Z_CURVE = bytes.fromhex(  # a ‖ b ‖ xG ‖ yG of the SM2 curve (GB/T 32918.5)
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


@lru_cache(maxsize=256)
def sm2_z(public_key: bytes, user_id: str = DEFAULT_USER_ID) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), the signer-id pre-hash of SM3withSM2.

    Why compute it here: it depends only on the key and the id, so it is computed once per key; GmSSL's
    all-in-one sm2_sign recomputes it (and more) on every call and is ~7× slower than signing the digest.
    Tests check this path against GmSSL's own sm2_sign/sm2_verify with the same signer id.
    """
    uid = user_id.encode("utf-8")
    if len(uid) >= 8192:
        raise SecurityError("E-SEC-SETTING", "the SM2 user id is too long")
    return sm3((len(uid) * 8).to_bytes(2, "big") + uid + _SM2_Z_CURVE + public_key)


def sm2_digest(public_key: bytes, message: bytes, user_id: str = DEFAULT_USER_ID) -> bytes:
    """e = SM3(Z ‖ M): what SM3withSM2 actually signs."""
    return sm3(sm2_z(public_key, user_id) + message)


def _rs_to_der(rs: bytes) -> bytes | None:
    if len(rs) != 64:
        return None
    r, s = int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")
    if not (0 < r < SM2_N and 0 < s < SM2_N):
        return None
    return encode_dss_signature(r, s)


class SM2Signer:
    """SM3withSM2 signing with an explicit signer id; signatures as raw r‖s (64 bytes)."""

    def __init__(self, private_key: Secret, public_key: bytes, user_id: str = DEFAULT_USER_ID):
        raw = private_key.reveal()
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise SecurityError("E-SEC-KEY", "SM2Signer needs a parsed 32-byte private key")
        self._private = private_key
        self.public_key = bytes(public_key)
        self.user_id = user_id
        # A private key that does not match its public key would sign with a wrong Z value and every
        # signature would be rejected by the platform: find out now, not at the first claim.
        probe = b"rules-engine key pair check"
        if not sm2_verify(self.public_key, probe, self.sign(probe), user_id):
            raise SecurityError("E-SEC-KEY-PAIR", "the SM2 private key does not belong to the given public key")

    def sign(self, message: bytes) -> bytes:
        try:
            der = _gm().sm2_sign_sm3_digest(self._private.reveal(),
                                                sm2_digest(self.public_key, message, self.user_id))
        except _gm().GmsslInnerError as e:  # InvalidValueError is a subclass
            raise SecurityError("E-SEC-KEY", f"SM2 signing failed ({type(e).__name__})") from None
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"SM2Signer(private_key={self._private!r}, user_id={self.user_id!r})"


def sm2_verify(public_key: bytes, message: bytes, rs: bytes, user_id: str = DEFAULT_USER_ID) -> bool:
    """True when `rs` (raw r‖s) is an SM3withSM2 signature of `message` under `public_key` and `user_id`.

    Malformed signatures are rejected here, before GmSSL sees them (GmSSL prints a line to stderr
    for each rejected signature; that line carries no data).
    """
    der = _rs_to_der(rs)
    if der is None:
        return False
    try:
        return bool(_gm().sm2_verify_sm3_digest(public_key, sm2_digest(public_key, message, user_id), der))
    except _gm().GmsslInnerError:
        return False


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise SecurityError("E-SEC-FORMAT", f"{what} must be Base64 text, found {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecurityError("E-SEC-FORMAT", f"{what} is not valid Base64") from None


# --------------------------------------------------------------------------- transport authentication

_TRANSPORTS: dict[str, type["TransportAuth"]] = {}
_MESSAGE_SECURITY: dict[str, type["MessageSecurity"]] = {}


def register_transport(cls: type["TransportAuth"]) -> type["TransportAuth"]:
    _TRANSPORTS[cls.name] = cls
    return cls


def register_message_security(cls: type["MessageSecurity"]) -> type["MessageSecurity"]:
    _MESSAGE_SECURITY[cls.name] = cls
    return cls


def transport_names() -> list[str]:
    return sorted(_TRANSPORTS)


def message_security_names() -> list[str]:
    return sorted(_MESSAGE_SECURITY)


class TransportAuth:
    """Adds authentication headers to each HTTP request. Stateless except for cached tokens."""

    name: ClassVar[str] = ""
    #: header names (lower case) whose values are credentials: redacted in reprs and audit logs
    sensitive_headers: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **inject: Any) -> "TransportAuth":
        return cls(**{k: v for k, v in settings.items() if k != "plugin"}, **inject)

    def headers(self) -> dict[str, str]:
        return {}

    async def aheaders(self) -> dict[str, str]:
        return self.headers()

    def invalidate(self) -> None:
        """The platform answered 401/403: forget any cached credential."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_transport
class NoTransportAuth(TransportAuth):
    """No authentication headers: a private network or a certificate plug-in does the job."""

    name = "none"


def random_nonce() -> str:
    return _secrets.token_hex(16)


@register_transport
class XTifAuth(TransportAuth):
    """The TIF API gateway headers: ``x-tif-paasid``, ``x-tif-timestamp`` (Unix seconds),
    ``x-tif-nonce`` and ``x-tif-signature`` = hex SHA-256 of (timestamp + token + nonce + timestamp).

    Three integrator copies write lower-case hex (the reference's definition), a Go utility and a
    card-service client write upper case: `signature_case` chooses. The public portal signs with an
    empty token (two captured requests verify that way), so the token is optional.
    """

    name = "x_tif"

    def __init__(self, paasid: str, token: Secret | None = None, *, service_id: str | None = None,
                 signature_case: str = "lower", nonce: Callable[[], str] = random_nonce,
                 clock: Callable[[], float] = time.time):
        if signature_case not in ("lower", "upper"):
            raise SecurityError("E-SEC-SETTING", f"signature_case is 'lower' or 'upper', not {signature_case!r}")
        self.paasid = paasid
        self._token = token
        self.service_id = service_id
        self.signature_case = signature_case
        self._nonce = nonce
        self._clock = clock

    @staticmethod
    def signature(timestamp: str, token: str, nonce: str, case: str = "lower") -> str:
        digest = hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode("utf-8")).hexdigest()
        return digest.upper() if case == "upper" else digest

    def headers(self) -> dict[str, str]:
        ts = str(int(self._clock()))
        nonce = self._nonce()
        token = self._token.text() if self._token is not None else ""
        h = {
            "x-tif-paasid": self.paasid,
            "x-tif-timestamp": ts,
            "x-tif-nonce": nonce,
            "x-tif-signature": self.signature(ts, token, nonce, self.signature_case),
        }
        if self.service_id:
            h["x-tif-serviceId"] = self.service_id
        return h

    def __repr__(self) -> str:
        return (f"XTifAuth(paasid={self.paasid!r}, token={self._token!r}, "
                f"signature_case={self.signature_case!r})")


class TokenRequest:
    """One OAuth2 token request, handed to the injectable fetch callable.

    Fields are public except the credentials, which only `form()` and `basic_auth()` reveal, so
    the object can be logged or shown in a test failure without leaking a password.
    """

    __slots__ = ("url", "client_id", "_client_secret", "username", "_password", "scope", "grant_type",
                 "timeout")

    def __init__(self, url: str, *, client_id: str | None, client_secret: Secret | None,
                 username: str | None, password: Secret | None, scope: str | None,
                 grant_type: str, timeout: float):
        self.url = url
        self.client_id = client_id
        self._client_secret = client_secret
        self.username = username
        self._password = password
        self.scope = scope
        self.grant_type = grant_type
        self.timeout = timeout

    def form(self) -> dict[str, str]:
        """The form body: grant_type, username, password, scope (as the observed region sends)."""
        f = {"grant_type": self.grant_type}
        if self.username is not None:
            f["username"] = self.username
        if self._password is not None:
            f["password"] = self._password.text()
        if self.scope:
            f["scope"] = self.scope
        return f

    def basic_auth(self) -> tuple[str, str] | None:
        """(client_id, client_secret) for HTTP Basic authentication, or None."""
        if self.client_id is None:
            return None
        return (self.client_id, self._client_secret.text() if self._client_secret is not None else "")

    def secrets(self) -> tuple[Secret | None, Secret | None]:
        return (self._client_secret, self._password)

    def __repr__(self) -> str:
        return (f"TokenRequest(url={self.url!r}, client_id={self.client_id!r}, username={self.username!r}, "
                f"scope={self.scope!r}, grant_type={self.grant_type!r})")


TokenFetch = Callable[[TokenRequest], Mapping[str, Any]]
AsyncTokenFetch = Callable[[TokenRequest], Awaitable[Mapping[str, Any]]]


def httpx_fetch(req: TokenRequest) -> Mapping[str, Any]:
    """Default synchronous token fetch (httpx, imported only when a token is actually fetched)."""
    import httpx

    r = httpx.post(req.url, data=req.form(), auth=req.basic_auth(), timeout=req.timeout,
                   headers={"Accept": "application/json"})
    return _token_json(r.status_code, r.content)


async def httpx_afetch(req: TokenRequest) -> Mapping[str, Any]:
    """Default asynchronous token fetch (httpx.AsyncClient)."""
    import httpx

    async with httpx.AsyncClient(timeout=req.timeout) as client:
        r = await client.post(req.url, data=req.form(), auth=req.basic_auth(),
                              headers={"Accept": "application/json"})
    return _token_json(r.status_code, r.content)


def _token_json(status: int, content: bytes) -> Mapping[str, Any]:
    if status != 200:
        # the body of a failed token call may echo the request: not quoted
        raise SecurityError("E-SEC-TOKEN", f"the token endpoint answered HTTP {status}")
    try:
        return json.loads(content)
    except ValueError:
        raise SecurityError("E-SEC-TOKEN", "the token endpoint's answer is not JSON") from None


@register_transport
class BearerAuth(TransportAuth):
    """``Authorization: Bearer <token>``: a static token, or one fetched from `token_url` with the
    OAuth2 password grant (HTTP Basic client_id:client_secret; form username/password/scope/grant_type)
    and cached until `expires_in` minus `refresh_margin` seconds (or `default_ttl` when the server
    gives no lifetime). Concurrent callers share one fetch. `invalidate()` drops the cached token.
    """

    name = "bearer"
    sensitive_headers = frozenset({"authorization"})

    def __init__(self, *, token: Secret | None = None, token_url: str | None = None,
                 client_id: str | None = None, client_secret: Secret | None = None,
                 username: str | None = None, password: Secret | None = None, scope: str | None = None,
                 grant_type: str = "password", refresh_margin: float = 60.0, default_ttl: float = 600.0,
                 timeout: float = 10.0, fetch: TokenFetch | None = None, afetch: AsyncTokenFetch | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if (token is None) == (token_url is None):
            raise SecurityError("E-SEC-SETTING", "bearer needs exactly one of 'token' (static) or 'token_url' "
                                                 "(OAuth2 password grant)")
        if token_url is not None and grant_type == "password" and (username is None or password is None):
            raise SecurityError("E-SEC-SETTING", "the OAuth2 password grant needs 'username' and 'password'")
        self._static = token
        self.token_url = token_url
        self._request = None if token_url is None else TokenRequest(
            token_url, client_id=client_id, client_secret=client_secret, username=username,
            password=password, scope=scope, grant_type=grant_type, timeout=timeout)
        self.refresh_margin = float(refresh_margin)
        self.default_ttl = float(default_ttl)
        self._fetch = fetch or httpx_fetch
        self._afetch = afetch
        self._clock = clock
        self._token: Secret | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self.fetches = 0  # how many tokens were fetched (monitoring, tests)

    # ---- cache

    def _cached(self) -> Secret | None:
        if self._static is not None:
            return self._static
        if self._token is not None and self._clock() < self._expires:
            return self._token
        return None

    def _store(self, answer: Mapping[str, Any]) -> Secret:
        if not isinstance(answer, Mapping):
            raise SecurityError("E-SEC-TOKEN", "the token endpoint's answer is not a JSON object")
        tok = answer.get("access_token")
        if not isinstance(tok, str) or not tok:
            err = answer.get("error_description") or answer.get("error")
            raise SecurityError("E-SEC-TOKEN", "the token endpoint gave no access_token"
                                + (f" ({scrub(str(err)[:200], *self._request.secrets())})" if err else ""))
        ttl = answer.get("expires_in")
        try:
            ttl = float(ttl) if ttl is not None else self.default_ttl
        except (TypeError, ValueError):
            ttl = self.default_ttl
        life = ttl - self.refresh_margin if ttl > 2 * self.refresh_margin else ttl / 2
        self._token = Secret(tok, f"oauth2:{self.token_url}")
        self._expires = self._clock() + max(life, 0.0)
        self.fetches += 1
        log.info("bearer token fetched from %s, cached for %.0f s", self.token_url, life)
        return self._token

    def _wrap(self, e: Exception) -> SecurityError:
        if isinstance(e, SecurityError):
            return e
        msg = scrub(f"{type(e).__name__}: {e}", *self._request.secrets())[:300]
        return SecurityError("E-SEC-TOKEN", f"token request to {self.token_url} failed: {msg}")

    @staticmethod
    def _header(tok: Secret) -> dict[str, str]:
        return {"Authorization": f"Bearer {tok.text()}"}

    # ---- interface

    def headers(self) -> dict[str, str]:
        with self._lock:
            tok = self._cached()
            if tok is None:
                try:
                    answer = self._fetch(self._request)
                    if inspect.isawaitable(answer):
                        getattr(answer, "close", lambda: None)()  # no "never awaited" warning
                        raise SecurityError("E-SEC-SETTING", "the sync fetch returned a coroutine; pass it "
                                                             "as afetch and call aheaders()")
                    tok = self._store(answer)
                except Exception as e:  # noqa: BLE001 - every failure becomes one located error kind
                    raise self._wrap(e) from None
        return self._header(tok)

    async def aheaders(self) -> dict[str, str]:
        with self._lock:
            tok = self._cached()
        if tok is not None:
            return self._header(tok)
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            with self._lock:
                tok = self._cached()
            if tok is None:
                try:
                    if self._afetch is not None:
                        answer = await self._afetch(self._request)
                    elif self._fetch is httpx_fetch:
                        answer = await httpx_afetch(self._request)
                    else:  # an injected sync fetch: run it off the event loop
                        answer = await asyncio.to_thread(self._fetch, self._request)
                    with self._lock:
                        tok = self._store(answer)
                except Exception as e:  # noqa: BLE001
                    raise self._wrap(e) from None
        return self._header(tok)

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._expires = 0.0

    def __repr__(self) -> str:
        if self._static is not None:
            return f"BearerAuth(token={self._static!r})"
        return f"BearerAuth(token_url={self.token_url!r}, request={self._request!r})"


@register_transport
class ApiKeyAuth(TransportAuth):
    """A fixed API key in one header (``apikey`` by default)."""

    name = "apikey"

    def __init__(self, key: Secret, header: str = "apikey"):
        self._key = key
        self.header = header
        self.sensitive_headers = frozenset({header.lower()})  # type: ignore[misc]

    def headers(self) -> dict[str, str]:
        return {self.header: self._key.text()}

    def __repr__(self) -> str:
        return f"ApiKeyAuth(header={self.header!r}, key={self._key!r})"


# --------------------------------------------------------------------------- message security

class MessageSecurity:
    """Turns a plain message into the wire message and back.

    `seal(payload)` → the message to send (signed / encrypted); `open(message)` → the plain message,
    after verifying and decrypting, or `SecurityError`. Both take and return dicts; `RegionSecurity`
    does the bytes. `field` names the business part for plug-ins that protect only that part (the
    8-field envelope's ``input`` on the way out, ``output`` on the way back); a simulator playing the
    platform calls ``open(request, field="input")`` and ``seal(answer, field="output")``.
    """

    name: ClassVar[str] = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **inject: Any) -> "MessageSecurity":
        return cls(**{k: v for k, v in settings.items() if k != "plugin"}, **inject)

    def seal(self, payload: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        return dict(payload)

    def open(self, message: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        return dict(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_message_security
class NoMessageSecurity(MessageSecurity):
    """Plain JSON; `cainfo` empty — the common case of the 定点 interface (reference §2.2.1)."""

    name = "none"


def _now_stamp(clock: Callable[[], float], unit: str, as_: str) -> str | int:
    t = clock()
    v = int(t * 1000) if unit == "ms" else int(t)
    return str(v) if as_ == "string" else v


@register_message_security
class SchemeB(MessageSecurity):
    """The 移动支付 / 电子凭证 / portal open-API scheme (reference/gateway.md §2.1).

    seal: adds appId (or appCode), encType "SM4", signType "SM2", timestamp and version; signs the
    signing string of the *plain* message with our SM2 key (SM3withSM2, `user_id`, raw r‖s, Base64);
    replaces `data` by `encData` = upper-case hex of SM4-ECB/PKCS#7 of its compact JSON under the key
    derived from appId/appSecret.
    open: decrypts `encData` (when present), rebuilds the signing string with the decrypted data and
    verifies `signData` with the *peer's* public key. The plug-in is symmetric: the platform side (a
    simulator) uses the same class with the platform key as its own and the channel key as the peer.

    `layout` "open_api" puts the fields at the top level (appId, encData, …; the SDK's wire form);
    "portal" nests them as ``{"data": {appCode, …, signData, "data": {"encData": …}}}`` as the public
    service portal does.
    """

    name = "scheme_b"

    def __init__(self, *, app_id: str, app_secret: Secret, private_key: Secret | None = None,
                 public_key: bytes | None = None, peer_public_key: bytes | None = None,
                 user_id: str = DEFAULT_USER_ID, app_id_field: str = "appId", version: str = "2.0.1",
                 timestamp_unit: str = "ms", timestamp_type: str = "string", layout: str = "open_api",
                 escape_non_ascii: bool = False, key_order: str = "ordinal",
                 response_signature: str = "required", clock: Callable[[], float] = time.time):
        for name, value, allowed in (("timestamp_unit", timestamp_unit, ("ms", "s")),
                                     ("timestamp_type", timestamp_type, ("string", "number")),
                                     ("layout", layout, ("open_api", "portal")),
                                     ("key_order", key_order, ("ordinal", "case_insensitive")),
                                     ("response_signature", response_signature, ("required", "optional"))):
            if value not in allowed:
                raise SecurityError("E-SEC-SETTING", f"{name} is one of {', '.join(allowed)}, not {value!r}")
        self.app_id = app_id
        self._app_secret = app_secret
        self._data_key = Secret(derive_scheme_b_key(app_id, app_secret.text()),
                                f"derived from {app_secret.source}")
        if private_key is not None and public_key is None:
            raise SecurityError("E-SEC-SETTING", "signing needs our own public key too "
                                                 "(it enters SM3withSM2's Z value)")
        self._signer = SM2Signer(private_key, public_key, user_id) if private_key is not None else None
        self.peer_public_key = peer_public_key
        self.user_id = user_id
        self.app_id_field = app_id_field
        self.version = version
        self.timestamp_unit = timestamp_unit
        self.timestamp_type = timestamp_type
        self.layout = layout
        self.escape_non_ascii = escape_non_ascii
        self.key_order = key_order
        self.response_signature = response_signature
        self._clock = clock

    # ---- building blocks (public: the golden tests and a simulator use them)

    def signing_string(self, message: Mapping[str, Any]) -> str:
        return signing_string(message, self._app_secret.text(), key_order=self.key_order)

    def sign(self, message: Mapping[str, Any]) -> str:
        if self._signer is None:
            raise SecurityError("E-SEC-SETTING", "no private_key configured: this channel can verify but not sign")
        return base64.b64encode(self._signer.sign(self.signing_string(message).encode("utf-8"))).decode("ascii")

    def verify(self, message: Mapping[str, Any], signature: Any) -> None:
        """Raise SecurityError unless `signature` (Base64 r‖s) signs the plain `message`."""
        if self.peer_public_key is None:
            raise SecurityError("E-SEC-SETTING", "no peer public key configured: cannot verify signatures")
        rs = _b64decode(signature, "signData")
        if len(rs) != 64:
            raise SecurityError("E-SEC-SIGNATURE", f"signData decodes to {len(rs)} bytes; a raw SM2 r‖s "
                                                   "signature is 64 (is it DER-encoded?)")
        if not sm2_verify(self.peer_public_key, self.signing_string(message).encode("utf-8"), rs, self.user_id):
            raise SecurityError("E-SEC-SIGNATURE", "signData does not verify: the message was altered, or it was "
                                                   "signed with another key, appSecret or user_id "
                                                   f"(user_id setting: {self.user_id!r})")

    def encrypt_data(self, data: Any) -> str:
        plain = compact_json(data, ensure_ascii=self.escape_non_ascii).encode("utf-8")
        return sm4_ecb_encrypt(self._data_key.reveal(), plain).hex().upper()

    def decrypt_data(self, enc: Any) -> Any:
        if not isinstance(enc, str):
            raise SecurityError("E-SEC-FORMAT", f"encData must be hex text, found {type(enc).__name__}")
        try:
            ct = bytes.fromhex(enc)
        except ValueError:
            raise SecurityError("E-SEC-DECRYPT", "encData is not hex: the message was altered") from None
        plain = sm4_ecb_decrypt(self._data_key.reveal(), ct)
        try:
            return json.loads(plain.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, ValueError):
            raise SecurityError("E-SEC-DECRYPT", "encData decrypts to something that is not JSON: the message "
                                                 "was altered or encrypted under another appId/appSecret") from None

    # ---- interface

    def seal(self, payload: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        if "data" not in payload:
            raise SecurityError("E-SEC-FORMAT", "scheme_b seals a message with a 'data' object")
        plain = {self.app_id_field: self.app_id, "encType": "SM4", "signType": "SM2",
                 "timestamp": _now_stamp(self._clock, self.timestamp_unit, self.timestamp_type),
                 "version": self.version}
        plain.update({k: v for k, v in payload.items() if k not in ("signData", "encData")})
        signature = self.sign(plain)
        wire = {k: v for k, v in plain.items() if k != "data"}
        wire["signData"] = signature
        enc = self.encrypt_data(plain["data"])
        if self.layout == "portal":
            wire["data"] = {"encData": enc}
            return {"data": wire}
        wire["encData"] = enc
        return wire

    def open(self, message: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        outer = dict(message)
        if self.layout == "portal":
            inner = outer.get("data")
            if not isinstance(inner, Mapping):
                raise SecurityError("E-SEC-FORMAT", "portal layout: expected the message under 'data'")
            inner = dict(inner)
            nested = inner.get("data")
            enc = nested.get("encData") if isinstance(nested, Mapping) else None
        else:
            inner = outer
            enc = inner.get("encData")
        plain = {k: v for k, v in inner.items() if k not in ("encData", "signData")}
        if enc is not None:
            plain["data"] = self.decrypt_data(enc)
        signature = inner.get("signData")
        if signature in (None, ""):
            if self.response_signature == "required":
                raise SecurityError("E-SEC-UNSIGNED", "the message carries no signData and this channel "
                                                      "requires one (setting response_signature)")
            log.warning("scheme_b: accepted a message without signData (response_signature: optional)")
        else:
            self.verify(plain, signature)
        if self.layout == "portal":
            outer["data"] = plain
            return outer
        return plain

    def __repr__(self) -> str:
        return (f"SchemeB(app_id={self.app_id!r}, app_secret={self._app_secret!r}, signer={self._signer!r}, "
                f"user_id={self.user_id!r}, layout={self.layout!r}, version={self.version!r})")


_SM2SM4_UNSIGNED = frozenset({"cainfo", "signtype", "encType"})


def _infcode_zero(v: Any) -> bool:
    """infcode 0, as a number or as text (the envelope module's reading, without importing it)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, Decimal)):
        return v == 0
    return isinstance(v, str) and v.strip() in ("0", "-0")


@register_message_security
class Sm2Sm4(MessageSecurity):
    """SM2-sign + SM4-encrypt keyed by clientId (one Java deployment, reference §2.2.3).

    seal: the compact JSON of the business part (``input``) is signed (SM3withSM2, raw r‖s, Base64 →
    ``cainfo``, ``signtype`` "SM2") and, when `encrypt_input`, replaced by Base64 of SM4-ECB/PKCS#7
    under the UTF-8 bytes of clientId (16 bytes) with ``encType`` "SM4". The signed bytes and the
    encrypted bytes are the same, so a verifier checks exactly what it decrypted.
    open: the business part (``output``) is Base64-decoded and decrypted when it is text and
    `decrypt_output` is on; ``cainfo`` is verified with the peer key when `verify_response` is on —
    on *every* answer: one without a business part, or a refusal (infcode not 0), is signed over its
    status (`status_text`: the whole answer but cainfo/signtype/encType, keys sorted, the business
    part in plain), so a forged "infcode −2" cannot pass for the platform's word.
    """

    name = "sm2_sm4"

    def __init__(self, *, client_id: Secret, private_key: Secret | None = None, public_key: bytes | None = None,
                 peer_public_key: bytes | None = None, user_id: str = DEFAULT_USER_ID,
                 encrypt_input: bool = True, decrypt_output: bool = True, verify_response: bool = False,
                 request_field: str = "input", response_field: str = "output"):
        key = client_id.text().encode("utf-8")
        if len(key) != 16:
            raise SecurityError("E-SEC-KEY", f"clientId is the SM4 key and must be 16 bytes; it is {len(key)}")
        self._client_id = client_id
        self._key = Secret(key, f"derived from {client_id.source}")
        if private_key is not None and public_key is None:
            raise SecurityError("E-SEC-SETTING", "signing needs our own public key too "
                                                 "(it enters SM3withSM2's Z value)")
        self._signer = SM2Signer(private_key, public_key, user_id) if private_key is not None else None
        if verify_response and peer_public_key is None:
            raise SecurityError("E-SEC-SETTING", "verify_response needs the platform's public key")
        self.peer_public_key = peer_public_key
        self.user_id = user_id
        self.encrypt_input = encrypt_input
        self.decrypt_output = decrypt_output
        self.verify_response = verify_response
        self.request_field = request_field
        self.response_field = response_field

    def seal(self, payload: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        f = field or self.request_field
        if f not in payload:
            raise SecurityError("E-SEC-FORMAT", f"sm2_sm4 seals a message with an {f!r} part")
        if self._signer is None:
            raise SecurityError("E-SEC-SETTING", "no private_key configured: this channel cannot sign")
        text = compact_json(payload[f]).encode("utf-8")
        signed = self.status_text(payload) if self._status_signed(payload, f) else text
        wire = dict(payload)
        wire["cainfo"] = base64.b64encode(self._signer.sign(signed)).decode("ascii")
        wire["signtype"] = "SM2"
        if self.encrypt_input and payload[f] is not None:
            wire[f] = base64.b64encode(sm4_ecb_encrypt(self._key.reveal(), text)).decode("ascii")
            wire["encType"] = "SM4"
        return wire

    def _status_signed(self, message: Mapping[str, Any], f: str) -> bool:
        """An answer signed over its status rather than its business part: no business part, or not
        a success (infcode other than 0) — so the outcome itself is covered by the signature."""
        return f == self.response_field and (message.get(f) is None or not _infcode_zero(message.get("infcode")))

    @staticmethod
    def status_text(message: Mapping[str, Any]) -> bytes:
        """The bytes an answer without a business part (or a refusal) is signed over: every top-level
        field except the signature fields, keys sorted, compact JSON (the business part in plain)."""
        return compact_json({k: message[k] for k in sorted(message) if k not in _SM2SM4_UNSIGNED}).encode("utf-8")

    def open(self, message: Mapping[str, Any], *, field: str | None = None) -> dict[str, Any]:
        f = field or self.response_field
        out = dict(message)
        part = out.get(f)
        signed: bytes | None = None
        if isinstance(part, str) and part and self.decrypt_output:
            signed = sm4_ecb_decrypt(self._key.reveal(), _b64decode(part, f))
            try:
                out[f] = json.loads(signed.decode("utf-8"), parse_float=Decimal)
            except (UnicodeDecodeError, ValueError):
                raise SecurityError("E-SEC-DECRYPT", f"{f} decrypts to something that is not JSON: altered, or "
                                                     "encrypted under another clientId") from None
        elif part is not None and not isinstance(part, str):
            signed = compact_json(part).encode("utf-8")  # plain part: best effort, see docs
        if self.verify_response:  # every answer, with or without a business part
            cainfo = out.get("cainfo")
            if not cainfo:
                raise SecurityError("E-SEC-UNSIGNED", "the message carries no cainfo and verify_response is on")
            rs = _b64decode(cainfo, "cainfo")
            if self._status_signed(out, f):
                signed = self.status_text(out)
            if signed is None or not sm2_verify(self.peer_public_key, signed, rs, self.user_id):
                raise SecurityError("E-SEC-SIGNATURE", f"cainfo does not verify over {f}: altered, or signed with "
                                                       f"another key or user_id (user_id setting: {self.user_id!r})")
        return out

    def __repr__(self) -> str:
        return (f"Sm2Sm4(client_id={self._client_id!r}, signer={self._signer!r}, "
                f"encrypt_input={self.encrypt_input}, decrypt_output={self.decrypt_output})")


# --------------------------------------------------------------------------- one region's security

@dataclass(frozen=True, repr=False)
class PreparedRequest:
    """What to send: headers (transport auth + content type), the exact body bytes, and the wire
    message those bytes encode (for the outbox). `repr` and `redacted_headers()` hide credentials."""

    headers: Mapping[str, str]
    body: bytes
    message: Mapping[str, Any]
    sensitive: frozenset[str] = field(default_factory=frozenset)

    def redacted_headers(self) -> dict[str, str]:
        return {k: ("***" if k.lower() in self.sensitive else v) for k, v in self.headers.items()}

    def __repr__(self) -> str:
        return f"PreparedRequest(headers={self.redacted_headers()!r}, body=<{len(self.body)} bytes>)"


class RegionSecurity:
    """A region's transport authentication and message security, behind one small interface."""

    def __init__(self, transport: TransportAuth | None = None, message: MessageSecurity | None = None, *,
                 region: str = "", content_type: str = "application/json;charset=UTF-8"):
        self.transport = transport or NoTransportAuth()
        self.message = message or NoMessageSecurity()
        self.region = region
        self.content_type = content_type

    def _finish(self, wire: Mapping[str, Any], headers: dict[str, str]) -> PreparedRequest:
        body = compact_json(wire).encode("utf-8")
        headers = {"Content-Type": self.content_type, **headers}
        return PreparedRequest(headers=headers, body=body, message=wire,
                               sensitive=frozenset(h.lower() for h in self.transport.sensitive_headers))

    def prepare(self, payload: Mapping[str, Any]) -> PreparedRequest:
        """Seal `payload` and add authentication headers. Call once per attempt."""
        wire = self.message.seal(payload)
        return self._finish(wire, self.transport.headers())

    async def aprepare(self, payload: Mapping[str, Any]) -> PreparedRequest:
        """As `prepare`, for asyncio: a token fetch does not block the event loop. (Signing is a few
        milliseconds of CPU and runs inline.)"""
        wire = self.message.seal(payload)
        return self._finish(wire, await self.transport.aheaders())

    def open(self, body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
        """Parse, decrypt and verify an answer; SecurityError when it cannot be trusted."""
        return self.message.open(parse_json_body(body))

    def unauthorized(self) -> None:
        self.transport.invalidate()

    def __repr__(self) -> str:
        return f"RegionSecurity(region={self.region!r}, transport={self.transport!r}, message={self.message!r})"


def build_transport(settings: Mapping[str, Any], **inject: Any) -> TransportAuth:
    """A transport plug-in from its settings (secrets already resolved to `Secret`). `inject` passes
    test doubles (fetch, clock, nonce) through to the constructor."""
    name = settings.get("plugin", "none")
    cls = _TRANSPORTS.get(name)
    if cls is None:
        raise SecurityError("E-SEC-SETTING", f"unknown transport plug-in {name!r}; "
                                             f"known: {', '.join(transport_names())}")
    return cls.from_settings(settings, **inject)


def build_message_security(settings: Mapping[str, Any], **inject: Any) -> MessageSecurity:
    name = settings.get("plugin", "none")
    cls = _MESSAGE_SECURITY.get(name)
    if cls is None:
        raise SecurityError("E-SEC-SETTING", f"unknown message security plug-in {name!r}; known: "
                                             f"{', '.join(message_security_names())}")
    return cls.from_settings(settings, **inject)
