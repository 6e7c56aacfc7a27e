"""evl's Ed25519 signature rule, written from docs/FORMAT.md §"Signature validity" alone.

Pure Python (integers mod p, RFC 8032 §5.1 arithmetic); it shares no code with evl. A
signature is valid when S < ℓ, A and R are canonical encodings of points not of small order,
and [8](S·B − R − h·A) is the identity, h = SHA-512(R || A || M) mod ℓ.

Cofactorless libraries (Python `cryptography`, i.e. OpenSSL) check S·B = R + h·A instead and
accept small-order points: they agree with this rule on every signature RFC 8032 signing makes,
not on every input (check_vectors.py shows where).
"""
import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1, 1, 0)  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z


def decode_point(b):
    """The point `b` encodes (RFC 8032 §5.1.3), or None unless `b` is its canonical encoding."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    sign, y = n >> 255, n & (2**255 - 1)
    if y >= P:
        return None  # non-canonical: y not reduced
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        x = x * SQRT_M1 % P
    if (v * x * x - u) % P != 0:
        return None  # not on the curve
    if x == 0 and sign:
        return None  # non-canonical: x = 0 with the sign bit set
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def add(p, q):
    """RFC 8032 §5.1.4 addition (complete on edwards25519)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a, b = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    c, d = 2 * t1 * D * t2 % P, 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def neg(p):
    x, y, z, t = p
    return (-x % P, y, z, -t % P)


def mul(k, p):
    q = IDENTITY
    while k:
        if k & 1:
            q = add(q, p)
        p = add(p, p)
        k >>= 1
    return q


def is_identity(p):
    x, y, z, _ = p
    return x % P == 0 and (y - z) % P == 0


B = decode_point(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))


def small_order(p):
    return is_identity(mul(8, p))


def verify(public_key, signature, message):
    """Whether `signature` (64 bytes) of `message` under `public_key` (32 bytes) is valid by evl's rule."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a, r = decode_point(public_key), decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L or small_order(a) or small_order(r):
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    residual = add(mul(s, B), neg(add(r, mul(h, a))))
    return is_identity(mul(8, residual))


def verify_quick(public_key, signature, message):
    """verify(), answering from `cryptography`'s cofactorless check when that accepts.

    A signature with S·B = R + h·A satisfies [8](S·B − R − h·A) = identity too, so once the
    encoding and small-order rules pass, only what the cofactorless check refuses needs the slow
    arithmetic here (a whole ledger of honest signatures then checks at OpenSSL's speed).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(public_key) != 32 or len(signature) != 64:
        return False
    a, r = decode_point(public_key), decode_point(signature[:32])
    if a is None or r is None or small_order(a) or small_order(r):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True  # and S < ℓ: OpenSSL refuses a non-canonical S
    except (InvalidSignature, ValueError):
        return verify(public_key, signature, message)
