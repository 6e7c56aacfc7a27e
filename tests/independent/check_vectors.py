#!/usr/bin/env python3
"""An independent check of evl's formats, written from docs/FORMAT.md alone.

It decodes every entry vector in tests/vectors/format-v1.json byte by byte and compares every
decoded field value with the vector's `fields` (hex for 32-byte values, RFC 3339 for times,
names for enumerations), recomputes entry ids, key ids, public keys, note key ids and verifier
keys, verifies Ed25519 signatures, recomputes RFC 6962 leaf hashes, checks every inclusion proof
and the consistency proof with the RFC 9162 algorithms, and verifies the C2SP signed-note
checkpoint. Signatures are judged by §"Signature validity" (evl_ed25519.py), which is also
checked on the published Ed25519 edge cases in tests/vectors/ed25519-speccheck and
tests/vectors/ed25519-cctv, beside what Python `cryptography` (cofactorless OpenSSL) says of
them. It shares no code with evl (the canonical decoding is evl_canonical.py, shared with
check_store.py and check_gate_vectors.py).

Needs: python3, `pip install -r tests/independent/requirements.txt`.
Usage: python3 tests/independent/check_vectors.py [tests/vectors/format-v1.json]
Exits 0 when every vector checks; 1 naming the first that does not.
"""
import base64
import datetime
import json
import os
import sys

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evl_ed25519  # noqa: E402
from evl_canonical import ENTRY_SIGNATURE, KEY_ID, decode_entry, leaf_hash, node_hash, sha256  # noqa: E402


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
            if not evl_ed25519.verify(pub, raw[4:], text.encode()):
                raise InvalidSignature()
            lines = text.split("\n")
            return lines[0], int(lines[1]), base64.b64decode(lines[2])
    raise ValueError("no signature by the expected key")


def cofactorless(pub, sig, msg):
    """Python `cryptography` (OpenSSL): S·B = R + h·A, small-order points accepted."""
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def check_signature_rule(vectors_dir):
    """§"Signature validity" on the published Ed25519 edge cases."""
    p = evl_ed25519.P
    # "Taming the many EdDSAs", cases 0-11: valid exactly when neither A nor R is of small
    # order (0, 1, 2, 8-11; 8-11 are also non-canonical) and S < ℓ (6, 7); 3, 4 and 5 satisfy
    # the cofactored equation with mixed-order points.
    valid = {3, 4, 5}
    # No vector has a non-canonical encoding of a large-order point (nobody can sign under
    # one), so rule 2 is checked directly: y + p for y < 19 with either sign, and x = −0.
    non_canonical = [(p + y | sign << 255).to_bytes(32, "little")
                     for y in range(19) if p + y < 2**255 for sign in (0, 1)]
    non_canonical += [(1 | 1 << 255).to_bytes(32, "little"), (p - 1 | 1 << 255).to_bytes(32, "little")]
    assert not any(evl_ed25519.decode_point(e) for e in non_canonical), "a non-canonical encoding decoded"
    with open(os.path.join(vectors_dir, "ed25519-speccheck", "cases.json")) as f:
        cases = json.load(f)
    assert len(cases) == 12
    differ = []
    for i, c in enumerate(cases):
        pub, sig, msg = (bytes.fromhex(c[k]) for k in ("pub_key", "signature", "message"))
        got = evl_ed25519.verify(pub, sig, msg)
        assert got == (i in valid), f"speccheck case {i}: {got}"
        assert evl_ed25519.verify_quick(pub, sig, msg) == got, f"speccheck case {i}: quick"
        if cofactorless(pub, sig, msg) != got:
            differ.append(i)
    print(f"Ed25519 speccheck: cases {sorted(valid)} valid, the other 9 refused; "
          f"`cryptography` differs on {differ}")
    # C2SP CCTV: valid exactly when flagged neither low_order_A nor low_order_R.
    with open(os.path.join(vectors_dir, "ed25519-cctv", "ed25519vectors.json")) as f:
        vectors = json.load(f)
    assert len(vectors) == 914
    accepted, differ = 0, {"refused by cryptography": 0, "accepted by cryptography": 0}
    for v in vectors:
        flags = set(v["flags"] or [])
        pub, sig, msg = bytes.fromhex(v["key"]), bytes.fromhex(v["sig"]), v["msg"].encode()
        got = evl_ed25519.verify(pub, sig, msg)
        assert got == (not flags & {"low_order_A", "low_order_R"}), f"CCTV {v['number']} {flags}: {got}"
        assert evl_ed25519.verify_quick(pub, sig, msg) == got, f"CCTV {v['number']}: quick"
        accepted += got
        other = cofactorless(pub, sig, msg)
        if other != got:
            # Where a cofactorless verifier may differ: it refuses a small-order residue the
            # cofactored equation ignores, or accepts a small-order point this rule refuses.
            assert (got and "low_order_residue" in flags) or (not got and flags & {"low_order_A", "low_order_R"}), v
            differ["accepted by cryptography" if other else "refused by cryptography"] += 1
    assert accepted == 106
    print(f"Ed25519 CCTV: {accepted} of {len(vectors)} valid, as their flags say; `cryptography` differs on "
          + ", ".join(f"{n} {k}" for k, n in differ.items()))


# §"Primitives": times are i64 seconds, shown as RFC 3339 `…Z`.
TIME_FIELDS = {"claimed_at", "captured_at", "valid_until", "checkpoint_at", "as_of"}


def rfc3339(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(value, field=None):
    """A decoded value as the vectors show it: 32-byte values in hex, times in RFC 3339."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: shown(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    if field in TIME_FIELDS and isinstance(value, int):
        return rfc3339(value)
    return value


def same(decoded, expected, where):
    """Compares decoded values with the vector's, naming the first field that differs."""
    if isinstance(expected, dict) and isinstance(decoded, dict):
        check(sorted(decoded) == sorted(expected), f"{where}: fields {sorted(decoded)} != {sorted(expected)}")
        for k in expected:
            same(decoded[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list) and isinstance(decoded, list):
        check(len(decoded) == len(expected), f"{where}: {len(decoded)} elements, the vector has {len(expected)}")
        for i, (d, e) in enumerate(zip(decoded, expected)):
            same(d, e, f"{where}[{i}]")
    else:
        check(decoded == expected, f"{where}: decoded {decoded!r}, the vector says {expected!r}")


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def signature_ok(pub, sig, msg):
    """§"Signature validity", not OpenSSL's cofactorless rule."""
    return evl_ed25519.verify(pub, sig, msg)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/format-v1.json"
    # The published Ed25519 edge cases are the repository's, wherever the vector checked is
    # (tampered.py checks edited copies in a temporary directory).
    check_signature_rule(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors"))
    v = json.load(open(path))
    check(v["format"] == "evl entry format 1", f"vector format {v['format']!r}")
    origin = v["checkpoint"]["origin"]
    keys = {}
    for k in v["keys"]:
        seed = bytes.fromhex(k["seed"])
        pub = bytes.fromhex(k["public_key"])
        check(blake3.blake3(k["seed_phrase"].encode()).digest() == seed, f"key {k['name']}: seed")
        derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        check(derived == pub, f"key {k['name']}: public key is not the seed's")
        check(blake3.blake3(KEY_ID + pub).hexdigest() == k["key_id"], f"key {k['name']}: key id")
        note_id = sha256(origin.encode(), b"\n", b"\x01", pub)[:4].hex()
        check(note_id == k["note_key_id"], f"key {k['name']}: note key id")
        vkey = origin + "+" + note_id + "+" + base64.b64encode(b"\x01" + pub).decode()
        check(vkey == k["verifier_key"], f"key {k['name']}: verifier key")
        keys[k["key_id"]] = pub
    leaves = []
    for e in v["entries"]:
        name = e["name"]
        stored = bytes.fromhex(e["stored_hex"])
        try:
            fields, payload_name, payload = decode_entry(stored)
        except ValueError as ex:
            raise Failed(f"entry {name}: does not decode: {ex}")
        unsigned, sig = stored[:-64], stored[-64:]
        check(unsigned.hex() == e["unsigned_hex"], f"entry {name}: unsigned bytes")
        check(sig.hex() == e["signature"], f"entry {name}: signature bytes")
        # Every decoded field value, not only the field names.
        same(shown({**fields, "payload": {payload_name: payload}}), e["fields"], f"entry {name}")
        entry_id = blake3.blake3(unsigned).digest()
        check(entry_id.hex() == e["id"], f"entry {name}: id")
        check((ENTRY_SIGNATURE + entry_id).hex() == e["signature_message_hex"], f"entry {name}: signature message")
        signer = keys.get(fields["signer"].hex())
        check(signer is not None, f"entry {name}: signer {fields['signer'].hex()} is no vector key")
        check(signature_ok(signer, sig, ENTRY_SIGNATURE + entry_id), f"entry {name}: the signature does not verify")
        tampered = bytearray(stored)
        tampered[-70] ^= 1
        check(not signature_ok(signer, sig, ENTRY_SIGNATURE + blake3.blake3(bytes(tampered[:-64])).digest()),
              f"entry {name}: a tampered entry verified")
        leaf = leaf_hash(stored)
        check(leaf.hex() == e["leaf_hash"], f"entry {name}: leaf hash")
        leaves.append(leaf)
        print(f"entry {name:<11} id {e['id'][:16]}… every field as the vector says, signature ok, leaf ok")
    root = bytes.fromhex(v["tree"]["root"])
    check(v["tree"]["size"] == len(leaves), "tree size")
    for p in v["tree"]["inclusion"]:
        path_hashes = [bytes.fromhex(h) for h in p["hashes"]]
        check(check_inclusion(p["leaf_index"], p["tree_size"], leaves[p["leaf_index"]], path_hashes, root),
              f"inclusion proof of leaf {p['leaf_index']}")
        if path_hashes:
            bad = [bytes(32)] + path_hashes[1:]
            check(not check_inclusion(p["leaf_index"], p["tree_size"], leaves[p["leaf_index"]], bad, root),
                  f"an altered inclusion proof of leaf {p['leaf_index']} checked")
    c = v["tree"]["consistency"]
    check(check_consistency(c["old_size"], c["tree_size"], bytes.fromhex(c["old_root"]), root,
                            [bytes.fromhex(h) for h in c["hashes"]]), "consistency proof")
    print(f"tree of {v['tree']['size']}: every inclusion proof and the consistency proof check")
    admin = next(k for k in v["keys"] if k["name"] == "admin")
    try:
        note_origin, size, cp_root = verify_note(v["checkpoint"]["note"], origin, bytes.fromhex(admin["public_key"]))
    except InvalidSignature:
        raise Failed("checkpoint: the note's signature does not verify")
    except (ValueError, AssertionError) as ex:
        raise Failed(f"checkpoint: {ex}")
    check(note_origin == origin and size == v["tree"]["size"] and cp_root == root,
          "checkpoint: origin, size or root differ from the tree")
    print(f"checkpoint: signed note verifies; origin {note_origin}, size {size}, root matches")
    print("independent check: every vector verified")


if __name__ == "__main__":
    try:
        main()
    except Failed as ex:
        print(f"check_vectors: FAIL: {ex}", file=sys.stderr)
        sys.exit(1)
