"""Drives PyPI's aics-witness / aics-tlog (an independent C2SP tlog-witness implementation)
against evl, for tests/witness_interop.rs. Nothing here imports or copies evl code.

    witness_aics.py submit URL WITNESS_VKEY NOTE PROOFS_JSON OUT
        Submits the signed checkpoint NOTE to the witness at URL with aics-witness's own
        client (WitnessClient: old size from 0, 409 handling, the cosignature verified
        against WITNESS_VKEY, fresh timestamps), merges the cosignature into the note and
        writes it to OUT. PROOFS_JSON maps an old size (decimal string) to the consistency
        proof from it to the note's size, as a list of base64 hashes.
        Exit 0 on success; 3 when the witness refused (the status on stderr).

    witness_aics.py verify NOTE LOG_VKEY QUORUM WITNESS_VKEY...
        Verifies NOTE with aics-tlog's verify_checkpoint: the log signature by LOG_VKEY and at
        least QUORUM valid cosignature/v1 lines from the WITNESS_VKEYs. Prints the result;
        exit 0 when it holds, 1 otherwise.
"""

import base64
import json
import sys

from aics_tlog import parse_note, parse_vkey, verify_checkpoint
from aics_witness.feeder import FeederError, WitnessClient, WitnessRejected, merge_cosignatures


def submit(url, witness_vkey, note_path, proofs_path, out_path):
    note = open(note_path, "rb").read()
    proofs = json.load(open(proofs_path))

    def proof(old, new):
        return [base64.b64decode(h) for h in proofs[str(old)]]

    with WitnessClient(url, witness_vkey) as client:
        try:
            lines = client.submit(note, proof)
        except WitnessRejected as e:
            print(f"rejected {e.status}: {e}", file=sys.stderr)
            return 3
        except FeederError as e:
            print(f"failed {type(e).__name__}: {e}", file=sys.stderr)
            return 3
    open(out_path, "wb").write(merge_cosignatures(note, lines))
    print(lines, end="")
    return 0


def verify(note_path, log_vkey, quorum, witness_vkeys):
    note = parse_note(open(note_path, "rb").read())
    r = verify_checkpoint(
        note,
        parse_vkey(log_vkey),
        [parse_vkey(w) for w in witness_vkeys],
        int(quorum),
    )
    print(json.dumps({"ok": r.ok, "log_ok": r.log_ok, "cosignatures": r.cosignature_count,
                      "witnesses": r.witnesses, "error": r.error}))
    return 0 if r.ok else 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "submit":
        sys.exit(submit(*args))
    if cmd == "verify":
        sys.exit(verify(args[0], args[1], args[2], args[3:]))
    sys.exit(f"unknown command {cmd}")
