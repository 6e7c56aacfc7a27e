#!/usr/bin/env python3
"""An independent check that evl's version-3 disposition documents are RFC 8785 (JSON
Canonicalization Scheme) bytes (docs/FORMAT.md §"Dispositions"): an independent JCS
implementation, PyPI `rfc8785`, re-serializes each parsed document and must give back exactly
the bytes evl wrote; the v1/v2 documents (pretty JSON, kept for replay) must not be JCS.

Needs: python3, `pip install rfc8785`.
Usage: check_jcs.py [FILE …]   (default: the disposition vectors in tests/vectors/; a FILE is
either a vector JSON with a `document` string or a raw document)
Exits 0 when every v3 document is reproduced; 1 naming the first that is not.
"""
import hashlib
import json
import os
import sys

import rfc8785

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors")


def document_bytes(path):
    raw = open(path, "rb").read()
    v = json.loads(raw)
    if isinstance(v, dict) and isinstance(v.get("document"), str):
        return v["document"].encode("utf-8")
    return raw


def main(argv):
    files = argv or [os.path.join(VECTORS, f"disposition-v{n}.json") for n in (1, 2, 3)]
    checked = 0
    for f in files:
        doc = document_bytes(f)
        fmt = json.loads(doc)["format"]
        again = rfc8785.dumps(json.loads(doc))
        if fmt == "evl-disposition/v3":
            if again != doc:
                print(f"FAIL {f}: rfc8785 gives other bytes than evl's v3 document")
                return 1
            checked += 1
            print(f"OK {f}: {len(doc)} bytes, sha256 {hashlib.sha256(doc).hexdigest()}, reproduced by rfc8785")
        elif again == doc:
            print(f"FAIL {f}: a {fmt} document should be pretty JSON, not JCS")
            return 1
    if not checked:
        print("FAIL: no evl-disposition/v3 document was checked")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
