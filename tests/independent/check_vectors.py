#!/usr/bin/env python3
"""An independent check of evl's formats, written from docs/FORMAT.md alone.

It decodes every entry vector in tests/vectors/format-v1.json byte by byte, recomputes entry
ids and key ids with BLAKE3, verifies Ed25519 signatures, recomputes RFC 6962 leaf hashes,
checks every inclusion proof and the consistency proof with the RFC 9162 algorithms, and
verifies the C2SP signed-note checkpoint. It shares no code with evl.

Needs: python3, `pip install blake3 cryptography`.
Usage: python3 tests/independent/check_vectors.py [tests/vectors/format-v1.json]
"""
import base64
import hashlib
import json
import struct
import sys

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ENTRY_SIGNATURE = b"evl/entry-signature/v1\n"
KEY_ID = b"evl/key-id/v1\n"
ROLES = ["admin", "owner", "reviewer", "security-signer", "gate-chair"]
TIERS = ["authoritative", "operational", "excluded"]
ANNOTATIONS = ["note", "concern", "blocker", "accept", "reject"]


class Reader:
    """Reads the canonical encoding of docs/FORMAT.md."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack("<H", self.take(2))[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def i64(self): return struct.unpack("<q", self.take(8))[0]
    def b32(self): return self.take(32).hex()
    def string(self): return self.take(self.u64()).decode("utf-8")
    def bool(self):
        v = self.u8()
        if v > 1:
            raise ValueError("bad bool")
        return v == 1
    def vec(self, f): return [f() for _ in range(self.u64())]
    def opt(self, f):
        tag = self.u8()
        if tag > 1:
            raise ValueError("bad option tag")
        return f() if tag else None
    def enum(self, names): return names[self.u32()]
    def scope(self): return {"namespaces": self.vec(self.string), "workloads": self.vec(self.string)}
    def grant(self): return {"name": self.string(), "public_key": self.b32(), "roles": self.vec(lambda: self.enum(ROLES))}
    def workload(self): return {"namespace": self.string(), "workload": self.string()}

    def payload(self):
        v = self.u32()
        r = self
        table = {
            0: ("genesis", lambda: {"origin": r.string(), "admins": r.vec(r.grant)}),
            1: ("key-add", r.grant),
            2: ("key-rotate", lambda: {"old": r.b32(), "new_key": r.b32()}),
            3: ("key-revoke", lambda: {"key": r.b32(), "reason": r.string()}),
            4: ("artifact", lambda: {
                "content": r.b32(), "size": r.u64(), "kind": r.string(), "file_name": r.string(),
                "tier": r.enum(TIERS), "captured_at": r.i64(), "valid_until": r.opt(r.i64),
                "scope": r.scope(), "sealed": r.bool(), "supersedes": r.opt(r.b32),
                "labels": dict(r.vec(lambda: (r.string(), r.string()))),
                "facts": r.opt(lambda: {"parser": r.string(), "parser_version": r.u32(), "digest": r.b32()})}),
            5: ("annotation", lambda: {"subject": r.b32(), "kind": r.enum(ANNOTATIONS), "scope": r.scope(), "text": r.string()}),
            6: ("acknowledgment", lambda: {"topic": r.string(), "subject": r.opt(r.b32), "namespace": r.opt(r.string), "statement": r.string()}),
            7: ("promotion", lambda: {"artifact": r.b32(), "to": r.enum(TIERS), "reason": r.string()}),
            8: ("packet", lambda: {"name": r.string(), "revision": r.u32(), "parent": r.opt(r.b32), "gate": r.b32(),
                                   "checkpoint_at": r.i64(), "in_scope": r.vec(r.workload), "basis": r.vec(r.b32)}),
            9: ("narrowing", lambda: {"packet": r.b32(), "keep": r.vec(r.workload), "rationale": r.string()}),
            10: ("disposition", lambda: {"packet": r.b32(), "document": r.b32(), "verdict": r.string(), "as_of": r.i64(), "engine_version": r.string()}),
            11: ("decision", lambda: {"packet": r.b32(), "disposition": r.opt(r.b32), "decision": r.string(), "text": r.string()}),
        }
        name, f = table[v]
        return {name: f()}


def decode_entry(stored):
    """Splits stored bytes into (unsigned bytes, fields, signature)."""
    if len(stored) > 65535:
        raise ValueError("entry over the cap")
    unsigned, sig = stored[:-64], stored[-64:]
    r = Reader(unsigned)
    fields = {"format": r.u16(), "ledger": r.b32(), "signer": r.b32(), "claimed_at": r.i64(), "payload": r.payload()}
    if r.pos != len(unsigned):
        raise ValueError("trailing bytes")
    return unsigned, fields, sig


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def leaf_hash(b): return sha256(b"\x00", b)
def node_hash(l, r): return sha256(b"\x01", l, r)


def check_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check_consistency(first, second, first_root, second_root, path):
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if first == 0 or first > second or not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def verify_note(note, origin, pub):
    """C2SP signed-note with one Ed25519 signature by key name `origin`."""
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    key_hash = sha256(origin.encode(), b"\n", b"\x01", pub)[:4]
    for line in sigs.splitlines():
        dash, name, b64 = line.split(" ")
        assert dash == "\u2014", "signature line must start with an em dash"
        raw = base64.b64decode(b64)
        if name == origin and raw[:4] == key_hash:
            Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
            lines = text.split("\n")
            return lines[0], int(lines[1]), base64.b64decode(lines[2])
    raise ValueError("no signature by the expected key")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/format-v1.json"
    v = json.load(open(path))
    keys = {}
    for k in v["keys"]:
        pub = bytes.fromhex(k["public_key"])
        assert blake3.blake3(k["seed_phrase"].encode()).hexdigest() == k["seed"], k["name"]
        assert blake3.blake3(KEY_ID + pub).hexdigest() == k["key_id"], k["name"]
        keys[k["key_id"]] = pub
    leaves = []
    for e in v["entries"]:
        stored = bytes.fromhex(e["stored_hex"])
        unsigned, fields, sig = decode_entry(stored)
        assert unsigned.hex() == e["unsigned_hex"], e["name"]
        entry_id = blake3.blake3(unsigned).digest()
        assert entry_id.hex() == e["id"], e["name"]
        Ed25519PublicKey.from_public_bytes(keys[fields["signer"]]).verify(sig, ENTRY_SIGNATURE + entry_id)
        tampered = bytearray(stored)
        tampered[-70] ^= 1
        try:
            Ed25519PublicKey.from_public_bytes(keys[fields["signer"]]).verify(sig, ENTRY_SIGNATURE + blake3.blake3(bytes(tampered[:-64])).digest())
            raise AssertionError("a tampered entry verified")
        except Exception as ex:
            if isinstance(ex, AssertionError):
                raise
        assert fields["format"] == e["fields"]["format"] and fields["signer"] == e["fields"]["signer"]
        assert list(fields["payload"]) == list(e["fields"]["payload"]), e["name"]
        leaf = leaf_hash(stored)
        assert leaf.hex() == e["leaf_hash"], e["name"]
        leaves.append(leaf)
        print(f"entry {e['name']:<11} id {e['id'][:16]}… decoded, signature ok, leaf ok")
    root = bytes.fromhex(v["tree"]["root"])
    for p in v["tree"]["inclusion"]:
        path_hashes = [bytes.fromhex(h) for h in p["hashes"]]
        assert check_inclusion(p["leaf_index"], p["tree_size"], leaves[p["leaf_index"]], path_hashes, root)
        if path_hashes:
            bad = [bytes(32)] + path_hashes[1:]
            assert not check_inclusion(p["leaf_index"], p["tree_size"], leaves[p["leaf_index"]], bad, root)
    c = v["tree"]["consistency"]
    assert check_consistency(c["old_size"], c["tree_size"], bytes.fromhex(c["old_root"]), root,
                             [bytes.fromhex(h) for h in c["hashes"]])
    print(f"tree of {v['tree']['size']}: every inclusion proof and the consistency proof check")
    admin = next(k for k in v["keys"] if k["name"] == "admin")
    origin, size, cp_root = verify_note(v["checkpoint"]["note"], v["checkpoint"]["origin"], bytes.fromhex(admin["public_key"]))
    assert origin == v["checkpoint"]["origin"] and size == v["tree"]["size"] and cp_root == root
    print(f"checkpoint: signed note verifies; origin {origin}, size {size}, root matches")
    print("independent check: every vector verified")


if __name__ == "__main__":
    main()
