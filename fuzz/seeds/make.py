#!/usr/bin/env python3
"""Makes the committed seed inputs beside this file, which scripts/fuzz-smoke.sh (and anyone
running cargo fuzz) starts from, so each target begins at inputs that reach its deep paths:

- entry_decode/: one stored entry of each payload kind found in the flagship log vector
  (tests/vectors/store-layout-2/log, docs/FORMAT.md §"Store layout").
- checkpoint_open/valid.note: a C2SP checkpoint signed by the key the target opens with
  (Ed25519 seed 32 bytes of 7, origin example.org/fuzz; docs/FORMAT.md §"Checkpoints"), so
  the fuzzer mutates notes that verify instead of guessing signatures.

Needs: python3 with `cryptography`. Usage: python3 fuzz/seeds/make.py
"""
import base64
import hashlib
import os
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PAYLOADS = ["genesis", "key-add", "key-rotate", "key-revoke", "artifact", "annotation",
            "acknowledgment", "promotion", "packet", "narrowing", "disposition", "decision"]


def entries(log):
    """(payload kind, stored bytes) of every entry record, by §"The log"."""
    at = 16
    while at + 5 <= len(log):
        tag = log[at]
        (length,) = struct.unpack_from("<I", log, at + 1)
        body = log[at + 5:at + 5 + length]
        if tag == 1:
            # format u16, ledger [32], signer [32], claimed_at i64, then the payload's u32 tag.
            (kind,) = struct.unpack_from("<I", body, 2 + 32 + 32 + 8)
            yield PAYLOADS[kind], body
        at += 5 + length


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


with open(os.path.join(ROOT, "tests/vectors/store-layout-2/log"), "rb") as f:
    log = f.read()
seen = set()
for kind, body in entries(log):
    if kind not in seen:
        seen.add(kind)
        write(os.path.join(HERE, "entry_decode", kind), body)

key = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
origin = "example.org/fuzz"
root = hashlib.sha256(b"fuzz seed").digest()
body = f"{origin}\n42\n{base64.b64encode(root).decode()}\n".encode()
key_hash = hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]
line = f"\u2014 {origin} {base64.b64encode(key_hash + key.sign(body)).decode()}\n"
write(os.path.join(HERE, "checkpoint_open", "valid.note"), body + b"\n" + line.encode())
print("seeds:", ", ".join(sorted(seen)), "and checkpoint_open/valid.note")
