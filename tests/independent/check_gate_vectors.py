#!/usr/bin/env python3
"""An independent check of the disposition and bundle vectors, written from docs/FORMAT.md
§"Dispositions" and §"Bundles" alone (and the sections they build on). It shares no code with
evl; it reuses the canonical decoder (evl_canonical.py) and the registry fold and note parser of
check_store.py, both written from the same document.

tests/vectors/disposition-v1.json: the document's bytes are its canonical form (pretty JSON,
two-space indent, fields in the documented order, one final newline) and hash to the recorded
BLAKE3; every field has the documented shape and order; blockers, scope lists and narrowing
proposals are sorted as documented; the out-of-scope share is the documented quotient with two
decimals; the basis digest is BLAKE3 of the domain and the sorted, unique basis ids.

tests/vectors/bundle-v1.evlb (with bundle-v1.json, what evl reported for it): the magic, the
body decoded byte by byte with no trailing bytes; entries in strictly increasing index order
from the genesis; every signature verified and every signer authorized by folding the key
registry over the carried key entries; the checkpoint note signed by an admin key of that
registry for the body's origin; every inclusion proof checked against its root; blobs in
ascending digest order, each referenced, each artifact's bytes present with its size; the
packet, its ancestors, gates and basis carried; every carried disposition's document present,
and its packet, verdict, as_of, engine version and basis digest agreeing with the entries.
It does not re-run the gate engine: replaying a disposition needs the engine, which this
document does not specify.

Needs: python3, `pip install -r tests/independent/requirements.txt`.
Usage: python3 tests/independent/check_gate_vectors.py [tests/vectors]
Exits 0 when both vectors check; 1 naming the first thing that does not.
"""
import datetime
import json
import os
import re
import sys

import blake3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evl_canonical import ENTRY_SIGNATURE, Reader, decode_entry, leaf_hash, node_hash, sha256  # noqa: E402
from check_store import NEEDS, Registry, ed25519_ok, parse_note  # noqa: E402

# §"Domain separation"
BASIS = b"evl/basis/v1\n"
BUNDLE_MAGIC = b"evl-bundle/v1\n"

# §"Dispositions"
FIELDS = ["format", "engine_version", "packet", "packet_name", "revision", "gate", "gate_id", "as_of",
          "checkpoint_at", "basis_digest", "verdict", "would_be", "escalation", "blockers", "scope",
          "narrowing_proposals", "trace"]
VERDICTS = ["proceed", "hold", "narrow", "escalate"]
SUBJECTS = ["workload", "namespace", "path", "exception", "rule", "global"]
OUTCOMES = ["pass", "blocker", "ignored", "info", "escalate"]
BLOCKER_FIELDS = ["code", "subject", "scoped", "affects", "evidence", "reason"]
SCOPE_FIELDS = ["in_scope_workloads", "out_of_scope_workloads", "in_scope_namespaces",
                "out_of_scope_namespaces", "out_of_scope_share_pct"]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
HEX = re.compile(r"[0-9a-f]{64}")


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def rfc3339(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def byte_order(strings):
    """Strictly ascending in byte order (sorted, no duplicates)?"""
    enc = [s.encode() for s in strings]
    return all(a < b for a, b in zip(enc, enc[1:]))


def key_hash(origin, public):
    """§"Checkpoints": the note key hash of an Ed25519 key named `origin`."""
    return sha256(origin.encode(), b"\n", b"\x01", public)[:4]


def basis_digest(ids):
    return blake3.blake3(BASIS + b"".join(sorted(set(ids)))).digest()


def check_document(text, where):
    """§"Dispositions" for one document's bytes; returns the parsed document."""
    doc = json.loads(text)
    check(list(doc) == FIELDS, f"{where}: fields {list(doc)} are not {FIELDS} in order")
    canonical = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    check(text == canonical, f"{where}: not the canonical pretty JSON with one final newline")
    check(doc["format"] == "evl-disposition/v1", f"{where}: format {doc['format']!r}")
    check(re.fullmatch(r"evl-engine/\d+", doc["engine_version"]) is not None, f"{where}: engine version")
    for f in ("packet", "gate", "basis_digest"):
        check(HEX.fullmatch(doc[f]) is not None, f"{where}: {f} is not a hex digest")
    for f in ("as_of", "checkpoint_at"):
        check(TIME.fullmatch(doc[f]) is not None, f"{where}: {f} {doc[f]!r} is not RFC 3339 seconds with Z")
    check(isinstance(doc["revision"], int) and doc["revision"] >= 0, f"{where}: revision")
    check(doc["verdict"] in VERDICTS, f"{where}: verdict {doc['verdict']!r}")
    escalates = doc["verdict"] == "escalate"
    check((doc["would_be"] in VERDICTS) if escalates else doc["would_be"] is None,
          f"{where}: would_be {doc['would_be']!r} for verdict {doc['verdict']}")
    check(bool(doc["escalation"]) == escalates, f"{where}: escalation reasons for verdict {doc['verdict']}")
    keys = []
    for b in doc["blockers"]:
        check(list(b) == BLOCKER_FIELDS, f"{where}: blocker fields {list(b)}")
        s = b["subject"]
        check(s["type"] in SUBJECTS, f"{where}: subject type {s['type']!r}")
        check(list(s) == (["type"] if s["type"] == "global" else ["type", "name"]),
              f"{where}: subject {s}")
        check(all(HEX.fullmatch(e) for e in b["evidence"]), f"{where}: blocker evidence digests")
        keys.append((b["code"].encode(), SUBJECTS.index(s["type"]), s.get("name", "").encode(), b["scoped"],
                     [a.encode() for a in b["affects"]], [e.encode() for e in b["evidence"]], b["reason"].encode()))
    check(keys == sorted(keys), f"{where}: blockers are not in the documented order")
    sc = doc["scope"]
    check(list(sc) == SCOPE_FIELDS, f"{where}: scope fields {list(sc)}")
    for f in SCOPE_FIELDS[:4]:
        check(byte_order(sc[f]), f"{where}: scope {f} is not sorted and unique")
    packet_workloads = len(sc["in_scope_workloads"]) + len(sc["out_of_scope_workloads"])
    share = len(sc["out_of_scope_workloads"]) / packet_workloads * 100 if packet_workloads else 0.0
    check(sc["out_of_scope_share_pct"] == f"{share:.2f}",
          f"{where}: out_of_scope_share_pct {sc['out_of_scope_share_pct']!r}, the quotient gives {share:.2f}")
    props = [(p["proposal"], json.dumps(p, sort_keys=True)) for p in doc["narrowing_proposals"]]
    check(props == sorted(props), f"{where}: narrowing proposals are not sorted by proposal")
    for p in doc["narrowing_proposals"]:
        check(list(p) == ["proposal", "status", "keep", "matches_derived_scope"], f"{where}: proposal fields")
    for t in doc["trace"]:
        check(list(t) == ["rule", "outcome", "detail"], f"{where}: trace fields {list(t)}")
        check(t["outcome"] in OUTCOMES, f"{where}: trace outcome {t['outcome']!r}")
    return doc


def check_disposition_vector(vectors):
    v = json.load(open(os.path.join(vectors, "disposition-v1.json")))
    text = v["document"]
    check(blake3.blake3(text.encode()).hexdigest() == v["document_blake3"], "disposition: BLAKE3 of the document")
    doc = check_document(text, "disposition document")
    for f in ("format", "packet", "verdict", "as_of"):
        check(doc[f] == v[f], f"disposition: {f} {doc[f]!r}, the vector says {v[f]!r}")
    b = v["basis"]
    ids = [bytes.fromhex(i) for i in b["ids_sorted"]]
    check(b["domain"].encode() == BASIS, "disposition: basis domain")
    check(ids == sorted(set(ids)), "disposition: basis ids are not sorted and unique")
    check(bytes.fromhex(b["input_hex"]) == BASIS + b"".join(ids), "disposition: basis digest input")
    check(basis_digest(ids).hex() == b["digest"] == doc["basis_digest"], "disposition: basis digest")
    print(f"disposition vector: canonical, {len(doc['blockers'])} blockers in order, scope sorted, "
          f"basis digest of {len(ids)} ids recomputed")
    return v


def decode_bundle(data):
    """§"Bundles": magic, then canonical BundleBody; no trailing bytes."""
    check(data.startswith(BUNDLE_MAGIC), "bundle: magic")
    r = Reader(data[len(BUNDLE_MAGIC):])
    try:
        body = {"version": r.u16(), "origin": r.string(), "packet": r.b32(), "checkpoint": r.take(r.u64()),
                "entries": r.vec(lambda: {"index": r.u64(), "bytes": r.take(r.u64()), "proof": r.vec(r.b32)}),
                "blobs": r.vec(lambda: r.take(r.u64()))}
        r.end()
    except (ValueError, UnicodeDecodeError) as e:
        raise Failed(f"bundle: the body does not decode: {e}")
    return body


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


def check_bundle_vector(vectors, disposition_vector):
    data = open(os.path.join(vectors, "bundle-v1.evlb"), "rb").read()
    want = json.load(open(os.path.join(vectors, "bundle-v1.json")))
    check(len(data) == want["bytes"] and blake3.blake3(data).hexdigest() == want["blake3"],
          "bundle: size or BLAKE3 differ from bundle-v1.json")
    body = decode_bundle(data)
    check(body["version"] == 1, f"bundle: version {body['version']}")
    indexes = [e["index"] for e in body["entries"]]
    check(indexes and indexes[0] == 0, "bundle: does not start at the genesis (index 0)")
    check(all(a < b for a, b in zip(indexes, indexes[1:])), "bundle: entries not in increasing index order")
    # Entries: decoded, signed, authorized by the registry folded over the carried key entries.
    registry, genesis, entries = Registry(), None, {}
    for e in body["entries"]:
        i = e["index"]
        try:
            fields, name, p = decode_entry(e["bytes"])
        except ValueError as ex:
            raise Failed(f"bundle: entry at index {i} does not decode: {ex}")
        unsigned, sig = e["bytes"][:-64], e["bytes"][-64:]
        eid = blake3.blake3(unsigned).digest()
        if i == 0:
            check(name == "genesis" and fields["ledger"] == bytes(32), "bundle: index 0 is not a genesis")
            genesis = eid
            check(p["origin"] == body["origin"], "bundle: origin is not the genesis origin")
        else:
            check(fields["ledger"] == genesis, f"bundle: entry at index {i} names another ledger")
        err = registry.apply(i, name, p)
        check(err is None, f"bundle: entry at index {i}: {err}")
        signer = registry.keys.get(fields["signer"])
        check(signer is not None and registry.active(fields["signer"], i),
              f"bundle: entry at index {i}: signer is not an active registered key")
        check(NEEDS[name] in signer["roles"], f"bundle: entry at index {i}: signer lacks the {NEEDS[name]} role")
        check(ed25519_ok(signer["public_key"], sig, ENTRY_SIGNATURE + eid),
              f"bundle: entry at index {i}: the signature does not verify")
        entries[eid] = (i, name, p, fields)
    # The checkpoint: signed by an admin key of that registry, for the body's origin.
    try:
        note_body, origin, size, root, sigs = parse_note(body["checkpoint"].decode())
    except (ValueError, UnicodeDecodeError) as ex:
        raise Failed(f"bundle: checkpoint is not a signed note: {ex}")
    check(origin == body["origin"], "bundle: checkpoint origin")
    signed = any(name == origin and len(raw) == 68 and "admin" in k["roles"] and registry.active_at_size(kid, size)
                 and key_hash(origin, k["public_key"]) == raw[:4] and ed25519_ok(k["public_key"], raw[4:], note_body.encode())
                 for name, raw in sigs for kid, k in registry.keys.items())
    check(signed, "bundle: the checkpoint carries no valid signature by an admin key")
    check(size == want["checkpoint_size"], f"bundle: checkpoint size {size}")
    for e in body["entries"]:
        check(check_inclusion(e["index"], size, leaf_hash(e["bytes"]), e["proof"], root),
              f"bundle: the inclusion proof of entry at index {e['index']} does not lead to the checkpoint root")
    # Blobs: ascending digest, each referenced, artifacts' bytes present with their size.
    digests = [blake3.blake3(b).digest() for b in body["blobs"]]
    check(all(a < b for a, b in zip(digests, digests[1:])), "bundle: blobs not in ascending digest order")
    blobs = dict(zip(digests, body["blobs"]))
    referenced = set()
    for eid, (i, name, p, _) in entries.items():
        if name == "artifact":
            referenced.add(p["content"])
            check(p["content"] in blobs, f"bundle: the bytes of artifact {eid.hex()[:12]} are missing")
            check(len(blobs[p["content"]]) == p["size"], f"bundle: artifact {eid.hex()[:12]} has the wrong length")
        if name == "disposition":
            referenced.add(p["document"])
    stray = [d.hex()[:12] for d in digests if d not in referenced]
    check(not stray, f"bundle: carried bytes {stray} are referenced by no carried entry")
    # The packet, its lineage, gates and basis are carried.
    check(body["packet"].hex() == want["packet"], "bundle: packet is not the one bundle-v1.json names")
    packets, cur = [], body["packet"]
    while cur is not None:
        check(cur in entries and entries[cur][1] == "packet", f"bundle: packet revision {cur.hex()[:12]} is not carried")
        p = entries[cur][2]
        packets.append((cur, p))
        for need in [p["gate"]] + p["basis"]:
            check(need in entries, f"bundle: {need.hex()[:12]}, named by packet {cur.hex()[:12]}, is not carried")
        cur = p["parent"]
    # Dispositions: the document is carried and agrees with its entry and its packet.
    by_packet = dict(packets)
    dispositions = [(eid, v) for eid, v in entries.items() if v[1] == "disposition"]
    for eid, (i, _, p, _) in dispositions:
        check(p["packet"] in by_packet, f"bundle: disposition at index {i} is for a packet not in the lineage")
        check(p["document"] in blobs, f"bundle: the document of disposition at index {i} is missing")
        doc = check_document(blobs[p["document"]].decode(), f"bundle: disposition at index {i}")
        check(doc["packet"] == p["packet"].hex() and doc["verdict"] == p["verdict"]
              and doc["as_of"] == rfc3339(p["as_of"]) and doc["engine_version"] == p["engine_version"],
              f"bundle: disposition at index {i}: the document disagrees with its entry")
        check(doc["basis_digest"] == basis_digest(by_packet[p["packet"]]["basis"]).hex(),
              f"bundle: disposition at index {i}: basis digest is not that of its packet's basis")
    artifacts = sum(1 for v in entries.values() if v[1] == "artifact")
    counts = {"entries_checked": len(entries), "proofs_checked": len(body["entries"]),
              "artifacts_checked": artifacts, "dispositions_replayed": len(dispositions)}
    for k, n in counts.items():
        check(want[k] == n, f"bundle: {k} is {n}, bundle-v1.json says {want[k]}")
    check(want["verified"] is True and want["failures"] == [], "bundle-v1.json does not say it verified")
    # The disposition vector is the one this bundle carries.
    did = bytes.fromhex(disposition_vector["disposition_entry"])
    check(did in entries and blobs.get(entries[did][2]["document"]) == disposition_vector["document"].encode(),
          "bundle: does not carry the disposition vector's entry and document")
    print(f"bundle vector: {len(entries)} entries signed and authorized, {len(body['entries'])} proofs, "
          f"checkpoint of {size} by an admin, {len(blobs)} blobs, {len(packets)} packet revision(s), "
          f"{len(dispositions)} disposition(s) agreeing with their entries")


def main():
    vectors = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors"
    d = check_disposition_vector(vectors)
    check_bundle_vector(vectors, d)
    print("independent check: disposition and bundle vectors verified")


if __name__ == "__main__":
    try:
        main()
    except Failed as ex:
        print(f"check_gate_vectors: FAIL: {ex}", file=sys.stderr)
        sys.exit(1)
