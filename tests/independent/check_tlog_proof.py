#!/usr/bin/env python3
"""An independent verifier of C2SP tlog-proof@v1 files, written from the specifications alone:
https://c2sp.org/tlog-proof (the file), https://c2sp.org/tlog-checkpoint (the checkpoint body),
https://c2sp.org/signed-note (its signatures, Ed25519 verifier keys), RFC 9162 §2.1.3.2 (the
inclusion check) and docs/FORMAT.md §"tlog-proof files" (evl's use of the `extra` line: the
entry's stored bytes, so the leaf hash is SHA-256(0x00 || extra)). It shares no code with evl.

Needs: python3 and `cryptography` (hashlib for SHA-256; `blake3` only for --entry-id).
Usage: check_tlog_proof.py FILE --vkey VKEY [--vkey VKEY …] [--entry-id HEX]
Exits 0 when the proof verifies with a signature by one of the verifier keys; 1 naming the
first problem otherwise.
"""
import argparse
import base64
import binascii
import hashlib
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = "c2sp.org/tlog-proof@v1"


class Refused(Exception):
    pass


def b64(s, what):
    """Standard, padded base64 (RFC 4648 §4), refusing any other spelling."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"{what} is not base64")
    if base64.b64encode(raw).decode() != s:
        raise Refused(f"{what} is not canonical base64")
    return raw


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_ok(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def parse_proof(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("not UTF-8")
    if "\n\n" not in text:
        raise Refused("no empty line before the checkpoint")
    head, note = text.split("\n\n", 1)
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise Refused(f"first line is not {HEADER}")
    i = 1
    extra = None
    if i < len(lines) and lines[i].startswith("extra "):
        extra = b64(lines[i][len("extra "):], "extra")
        i += 1
    if i >= len(lines) or not re.fullmatch(r"index (0|[1-9][0-9]*)", lines[i]):
        raise Refused("no well-formed index line")
    index = int(lines[i][len("index "):])
    hashes = []
    for n, l in enumerate(lines[i + 1:]):
        h = b64(l, f"proof hash {n}")
        if len(h) != 32:
            raise Refused(f"proof hash {n} is not 32 bytes")
        hashes.append(h)
    return extra, index, hashes, note.encode("utf-8")


def parse_vkey(vkey):
    """<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 key)>."""
    name, kid, key = vkey.split("+", 2)
    raw = base64.b64decode(key, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise Refused(f"verifier key {vkey!r} is not an Ed25519 key")
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if want.hex() != kid:
        raise Refused(f"verifier key {vkey!r}: key id does not match its key")
    return name, want, raw[1:]


def open_note(note, vkeys):
    """Splits a signed note, checks each signature line by a known key; returns the text."""
    text = note.decode("utf-8")
    if not text.endswith("\n") or "\n\n" not in text:
        raise Refused("the checkpoint is not a signed note")
    body, sigs = text.split("\n\n", 1)
    body += "\n"
    verified = 0
    for line in sigs[:-1].split("\n"):
        m = re.fullmatch("\u2014 (\\S+) (\\S+)", line)
        if not m:
            raise Refused(f"malformed signature line {line!r}")
        sig = b64(m.group(2), "a note signature")
        for name, kid, pub in vkeys:
            if name == m.group(1) and sig[:4] == kid:
                try:
                    Ed25519PublicKey.from_public_bytes(pub).verify(sig[4:], body.encode("utf-8"))
                except InvalidSignature:
                    raise Refused(f"the signature by {name}+{kid.hex()} does not verify")
                verified += 1
    if not verified:
        raise Refused("no signature by a trusted verifier key")
    return body


def verify(data, vkeys, entry_id=None):
    extra, index, hashes, note = parse_proof(data)
    body = open_note(note, vkeys)
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise Refused("the checkpoint body is not origin, size, root")
    origin, size, root = lines[0], int(lines[1]), b64(lines[2], "the root hash")
    if len(root) != 32:
        raise Refused("the root hash is not 32 bytes")
    if not any(name == origin for name, _, _ in vkeys):
        raise Refused(f"no verifier key is named for origin {origin!r}")
    if extra is None:
        raise Refused("no extra line: no entry bytes to hash")
    leaf = hashlib.sha256(b"\x00" + extra).digest()
    if not inclusion_ok(index, size, leaf, hashes, root):
        raise Refused(f"the inclusion proof of index {index} does not lead to the root of size {size}")
    if entry_id is not None:
        import blake3

        got = blake3.blake3(extra[:-64]).hexdigest()
        if got != entry_id:
            raise Refused(f"the proof is of entry {got}, not {entry_id}")
    return origin, size, index, leaf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--vkey", action="append", required=True)
    ap.add_argument("--entry-id")
    a = ap.parse_args()
    try:
        vkeys = [parse_vkey(v) for v in a.vkey]
        with open(a.file, "rb") as f:
            origin, size, index, leaf = verify(f.read(), vkeys, a.entry_id)
    except (Refused, ValueError) as e:
        print(f"REFUSED {a.file}: {e}")
        return 1
    print(f"OK {a.file}: index {index} of {origin} at size {size}, leaf {leaf.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
