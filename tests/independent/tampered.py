#!/usr/bin/env python3
"""Shows that the independent checkers can fail: each runs on tampered copies of what it
checks — made in a temporary directory, the originals untouched — and must exit 1 naming the
damage, while the untouched originals must pass. A checker that passed everything would fail
here.

The tampering is what someone editing the files would do, including re-hashing what a plain
hash covers (a re-sealed edit), so each case reaches the check it is meant for:
check_vectors.py (a decoded field value, a signature, the tree root, the checkpoint),
check_gate_vectors.py (blocker order, canonical form, basis digest, out-of-scope share; a
bundle's blob, signature and proof), check_store.py (an entry's signature, a truncated log,
an index file).

Needs: python3 with tests/independent/requirements.txt installed (the checkers' needs).
Usage: python3 tests/independent/tampered.py [LEDGER_DIR NOTE]
       (default: tests/vectors/store-layout-2 and its checkpoint note)
Prints one line per case; exits 0 when every original passed and every copy was refused.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import blake3

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_gate_vectors import decode_bundle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
VECTORS = os.path.join(ROOT, "tests", "vectors")


def run(script, *args):
    r = subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


failures = []


def expect(what, script, args, code, needle):
    got, out = run(script, *args)
    ok = got == code and needle in out
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {script} exit {got}" + ("" if ok else f" (want {code} and {needle!r})"))
    if not ok:
        failures.append(what)
        print("     " + "\n     ".join(out.strip().splitlines()[-6:]))


def encode_bundle(body):
    """§"Bundles": the magic and the canonical encoding of BundleBody (u64 lengths, LE)."""
    u64 = lambda n: n.to_bytes(8, "little")  # noqa: E731
    out = [b"evl-bundle/v1\n", body["version"].to_bytes(2, "little"), u64(len(body["origin"].encode())),
           body["origin"].encode(), body["packet"], u64(len(body["checkpoint"])), body["checkpoint"],
           u64(len(body["entries"]))]
    for e in body["entries"]:
        out += [u64(e["index"]), u64(len(e["bytes"])), e["bytes"], u64(len(e["proof"])), *e["proof"]]
    out.append(u64(len(body["blobs"])))
    for b in body["blobs"]:
        out += [u64(len(b)), b]
    return b"".join(out)


def flip(data, pos, mask=0x01):
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def format_cases(tmp):
    src = os.path.join(VECTORS, "format-v1.json")
    expect("format vector, untouched", "check_vectors.py", [src], 0, "every vector verified")

    def case(what, edit, needle):
        v = json.load(open(src))
        edit(v)
        path = os.path.join(tmp, "format.json")
        json.dump(v, open(path, "w"))
        expect(what, "check_vectors.py", [path], 1, needle)

    entry = lambda v, name: next(e for e in v["entries"] if e["name"] == name)  # noqa: E731
    # Only the decoded-value comparison sees these: the bytes, ids and signatures are intact.
    case("a key-add's roles in the vector's fields",
         lambda v: entry(v, "key-add")["fields"]["payload"]["key-add"].update(roles=["owner"]),
         "entry key-add.payload.key-add.roles")
    case("an artifact's captured_at in the vector's fields",
         lambda v: entry(v, "artifact")["fields"]["payload"]["artifact"].update(captured_at="2026-04-19T00:00:00Z"),
         "entry artifact.payload.artifact.captured_at")
    case("an annotation's text in the vector's fields",
         lambda v: entry(v, "annotation")["fields"]["payload"]["annotation"].update(text="drill is fresh"),
         "entry annotation.payload.annotation.text")

    def resign(v):
        # A signature byte flipped in the stored bytes and in the signature field alike.
        e = entry(v, "annotation")
        stored = bytearray.fromhex(e["stored_hex"])
        stored[-1] ^= 1
        e["stored_hex"], e["signature"] = stored.hex(), stored[-64:].hex()
    case("an entry's signature", resign, "entry annotation: the signature does not verify")
    case("the tree root", lambda v: v["tree"].update(root="00" * 32), "inclusion proof of leaf 0")
    case("the checkpoint's size line",
         lambda v: v["checkpoint"].update(note=v["checkpoint"]["note"].replace("\n4\n", "\n3\n", 1)),
         "checkpoint: the note's signature does not verify")


def gate_cases(tmp):
    expect("disposition and bundle vectors, untouched", "check_gate_vectors.py", [VECTORS], 0,
           "disposition and bundle vectors verified")

    def case(what, edit_disposition, edit_bundle, needle):
        d = os.path.join(tmp, "vectors")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(VECTORS, d)
        if edit_disposition:
            v = json.load(open(os.path.join(d, "disposition-v1.json")))
            doc = edit_disposition(json.loads(v["document"]), v)
            # Re-hashed, as whoever edits the document would.
            v["document_blake3"] = blake3.blake3(doc.encode()).hexdigest()
            v["document"] = doc
            json.dump(v, open(os.path.join(d, "disposition-v1.json"), "w"))
        if edit_bundle:
            path = os.path.join(d, "bundle-v1.evlb")
            data = edit_bundle(open(path, "rb").read())
            open(path, "wb").write(data)
            meta = json.load(open(os.path.join(d, "bundle-v1.json")))
            meta.update(bytes=len(data), blake3=blake3.blake3(data).hexdigest())
            json.dump(meta, open(os.path.join(d, "bundle-v1.json"), "w"))
        expect(what, "check_gate_vectors.py", [d], 1, needle)

    pretty = lambda doc: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"  # noqa: E731

    def swap_blockers(doc, _):
        doc["blockers"][0], doc["blockers"][1] = doc["blockers"][1], doc["blockers"][0]
        return pretty(doc)

    def basis(doc, _):
        doc["basis_digest"] = "00" * 32
        return pretty(doc)

    def share(doc, _):
        doc["scope"]["out_of_scope_share_pct"] = "0.0"
        return pretty(doc)

    def verdict(doc, _):
        doc["verdict"] = "proceed"
        return pretty(doc)

    case("two blockers swapped", swap_blockers, None, "blockers are not in the documented order")
    case("the document not in canonical form", lambda doc, _: json.dumps(doc, indent=4) + "\n", None,
         "not the canonical pretty JSON")
    case("the basis digest", basis, None, "basis digest")
    case("the out-of-scope share's format", share, None, "out_of_scope_share_pct")
    case("the document's verdict", verdict, None, "disposition: verdict 'proceed', the vector says 'hold'")

    data = open(os.path.join(VECTORS, "bundle-v1.evlb"), "rb").read()
    body = decode_bundle(data)
    assert encode_bundle(body) == data, "the encoder here must give the vector back"
    gate = data.index(b'format = "evl-gate/v1"')
    entry1 = body["entries"][1]["bytes"]
    sig_end = data.index(entry1) + len(entry1) - 1
    proof = data.index(body["entries"][2]["proof"][0])
    def gate_byte(b):
        # The blob edited and the blobs re-sorted by digest, re-encoded as §"Bundles" says:
        # only the entry that names the gate's digest can tell.
        edited = decode_bundle(flip(b, gate))
        edited["blobs"].sort(key=lambda x: blake3.blake3(x).digest())
        return encode_bundle(edited)

    case("a byte of the gate definition carried in the bundle, blobs re-sorted", None, gate_byte,
         "are missing")
    case("a byte of the gate definition carried in the bundle", None, lambda b: flip(b, gate),
         "blobs not in ascending digest order")
    case("a signature byte of the bundle's entry at index 1", None, lambda b: flip(b, sig_end),
         "entry at index 1: the signature does not verify")
    case("a proof hash of the bundle's entry at index 2", None, lambda b: flip(b, proof),
         "the inclusion proof of entry at index 2")


def store_cases(tmp, ledger, note):
    expect("ledger, untouched", "check_store.py", [ledger, "--checkpoint", note], 0, "verified")

    def case(what, edit, needle):
        d = os.path.join(tmp, "ledger")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(ledger, d)
        edit(d)
        expect(what, "check_store.py", [d, "--checkpoint", note], 1, needle)

    def first_entry_signature(d):
        log = open(os.path.join(d, "log"), "rb").read()
        # The first record starts after the 16-byte header: tag u8, length u32, body.
        assert log[16] == 1, "the first record is an entry"
        length = int.from_bytes(log[17:21], "little")
        open(os.path.join(d, "log"), "wb").write(flip(log, 21 + length - 1))

    def truncate(d):
        log = open(os.path.join(d, "log"), "rb").read()
        open(os.path.join(d, "log"), "wb").write(log[: len(log) // 2])

    def index_entries(d):
        path = os.path.join(d, "index", "entries")
        data = open(path, "rb").read()
        open(path, "wb").write(flip(data, 8))

    case("a signature byte of the log's first entry", first_entry_signature, "signature")
    case("the log cut in half", truncate, "the ledger was rolled back")
    case("a byte of index/entries", index_entries, "index/entries")


def main():
    if len(sys.argv) == 3:
        ledger, note = sys.argv[1], sys.argv[2]
    else:
        ledger = os.path.join(VECTORS, "store-layout-2")
        note = os.path.join(VECTORS, "store-layout-2.checkpoint.note")
    with tempfile.TemporaryDirectory(prefix="evl-tampered-") as tmp:
        format_cases(tmp)
        gate_cases(tmp)
        store_cases(tmp, ledger, note)
    if failures:
        print(f"tampered: {len(failures)} case(s) not refused as they must be: {failures}", file=sys.stderr)
        sys.exit(1)
    print("tampered: every original verified and every tampered copy was refused")


if __name__ == "__main__":
    main()
