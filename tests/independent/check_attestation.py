#!/usr/bin/env python3
"""Verifies an evl attestation (docs/ATTESTATIONS.md) with the in-toto project's own Python
implementations, sharing no code with evl:

- the DSSE envelope's signature with `in_toto.models.metadata.Envelope` (securesystemslib's
  DSSE envelope; its `verify` matches signatures to keys by `keyid`, so the key is given the
  evl key id, BLAKE3("evl/key-id/v1\\n" || public key), as its keyid);
- the payload as an in-toto Statement v1 with `in-toto-attestation` (protobuf parse, then the
  Statement's own `validate()`), and the predicate, without evl's `evl` member and the
  verifier's `version` map (which the VSA protobuf lacks) and `verifiedLevels` (an array in the
  SLSA spec, a single string in in-toto-attestation 0.9.3's protobuf; checked by hand), as a
  SLSA VSA v1 message, strictly;
- every digest set holds `sha256` beside `blake3` (64 hex each).

Needs: python3, `pip install securesystemslib in-toto in-toto-attestation blake3`.
Usage: check_attestation.py ENVELOPE PUBKEY   (PUBKEY: an evl .pub file, or 64 hex)
Prints the statement's predicate as JSON on success (exit 0); one line and exit 1 otherwise.
"""
import base64
import json
import sys

import blake3
import google.protobuf.json_format as pb_json
from in_toto.models.metadata import Envelope
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.signer import SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"
VSA_V1 = "https://slsa.dev/verification_summary/v1"


def public_key(arg):
    try:
        text = open(arg).read().split()
        hexkey = text[1] if text and text[0] == "ed25519" else text[0]
    except OSError:
        hexkey = arg
    raw = bytes.fromhex(hexkey)
    if len(raw) != 32:
        raise ValueError("not a 32-byte Ed25519 public key")
    return raw


def digest_sets(v, path="$"):
    """Every `digest` object in the predicate and subject."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k.endswith("digest") and isinstance(x, dict):
                yield f"{path}.{k}", x
            else:
                yield from digest_sets(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from digest_sets(x, f"{path}[{i}]")


def check(path, pub):
    with open(path, "rb") as f:
        env_json = json.loads(f.read())
    keyid = blake3.blake3(b"evl/key-id/v1\n" + pub).hexdigest()
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": pub.hex()})
    env = Envelope.from_dict(env_json)
    if env.payload_type != PAYLOAD_TYPE:
        raise ValueError(f"payload type {env.payload_type!r}")
    env.verify([key], 1)  # raises VerificationError unless the signature by that key verifies
    statement = json.loads(env.payload)
    if base64.b64decode(env_json["payload"]) != json.dumps(statement, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode():
        raise ValueError("the payload is not compact JSON with sorted keys (RFC 8785 for this content)")
    pb = pb_json.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    if statement["predicateType"] != VSA_V1:
        raise ValueError(f"predicate type {statement['predicateType']!r}")
    pred = json.loads(json.dumps(statement["predicate"]))
    if "evl" not in pred:
        raise ValueError("the predicate has no evl member")
    del pred["evl"]
    pred["verifier"].pop("version", None)
    # The SLSA VSA v1 spec makes verifiedLevels an array of strings; in-toto-attestation
    # 0.9.3's protobuf declares it a single string, so it is checked here and left out of the
    # protobuf parse.
    levels = pred.pop("verifiedLevels", None)
    if not isinstance(levels, list) or not all(isinstance(x, str) for x in levels):
        raise ValueError("verifiedLevels is not an array of strings")
    vsa = pb_json.ParseDict(pred, vsa_pb2.VerificationSummary())  # strict: unknown fields fail
    if vsa.verification_result not in ("PASSED", "FAILED"):
        raise ValueError(f"verificationResult {vsa.verification_result!r}")
    if not vsa.verifier.id or not vsa.resource_uri or not vsa.policy.digest:
        raise ValueError("verifier.id, resourceUri and policy.digest are required")
    sets = list(digest_sets({"subject": statement["subject"], "predicate": statement["predicate"]}))
    for where, d in sets:
        for alg in ("blake3", "sha256"):
            h = d.get(alg, "")
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError(f"{where} lacks a {alg} digest")
    return statement, len(sets)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    try:
        statement, n = check(sys.argv[1], public_key(sys.argv[2]))
    except Exception as e:  # every refusal, whichever library raised it
        print(f"REFUSED {sys.argv[1]}: {type(e).__name__}: {e}")
        return 1
    print(json.dumps({"ok": True, "digest_sets": n, "statement": statement}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
