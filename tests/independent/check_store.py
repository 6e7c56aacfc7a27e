#!/usr/bin/env python3
"""An independent check of a ledger directory in store layout 2, written from docs/FORMAT.md alone.

It reads the `log` record by record and checks, for every batch: the record framing and the
batch's shape; every entry (decoded byte by byte, id recomputed, signature verified, signer
authorized by folding the key registry over the log as §"Key registry rules" says); every blob
(its digest is BLAKE3 of its bytes, stored once, right after the entry that references it);
every registry snapshot (equal to the folded registry); every stored checkpoint note; and every
commit record (counts, batch_start, registry and checkpoint pointers, the RFC 6962 root at its
size recomputed from the entry records, and the BLAKE3 `check`). It then recomputes every
index file and lookup run under `index/` from the log and compares them byte for byte, and
verifies the latest stored checkpoint and, with --checkpoint, a note an auditor kept.
It shares no code with evl.

It is strict: it passes only a ledger exactly as a completed writer leaves it. States the doc
calls recoverable (bytes past the last commit, index files behind the log, a missing index/,
a run file of the wrong length) are reported too, each saying so.

Where docs/FORMAT.md leaves a choice, this checker takes the one evl's ledgers show (each is a
doc bug to fix): a record's "log offset" is that of its tag byte; run names are decimal and E is
exclusive; a KeyState lists its roles ascending by variant index without duplicates; a genesis
admin's grant must list `admin`; a key is "active at a checkpoint's size" N if added at a
position < N and not retired at a position < N; entry ids are unique in a ledger; the
revoked_reason of a rotated key is not checked (undocumented).

Needs: python3, `pip install blake3 cryptography xxhash`.
Usage: python3 tests/independent/check_store.py LEDGER_DIR [--checkpoint NOTE]
Prints one line per problem and a summary; exits 0 if there is none, 1 otherwise.
"""
import base64
import os
import re
import struct
import sys

import blake3
import xxhash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evl_ed25519  # noqa: E402
from evl_canonical import (ENTRY_SIGNATURE, KEY_ID, MAX_ENTRY, ROLES, Reader,  # noqa: E402
                           decode_entry, leaf_hash, node_hash, sha256)

# §"Domain separation"
STORE_COMMIT = b"evl/store-commit/v2\n"

# §"Store layout"
STORE_TAG = b"evl-store/2\n"
LOG_MAGIC = b"evl-log/2\n" + bytes(6)
RUN_MAGIC = b"evl-run/3\n" + bytes(6)
INDEX_FORMAT = b"evl-index/3\n"
WHICH = {"ids": 1, "blobs": 2}


def index_record(kind, scope, position, key_value):
    """A 48-byte lookup record: key || value, then XXH3-64 of which || start || end || position
    || key || value (FORMAT.md §"The index files")."""
    check = xxhash.xxh3_64_intdigest(bytes([WHICH[kind]]) + struct.pack("<QQQ", *scope, position) + key_value)
    return key_value + struct.pack("<Q", check)
RUN_BATCH = 2048  # no evl writer leaves this many records after the last run (since 2026-12-03 it sorts at 256)
T_ENTRY, T_BLOB, T_REGISTRY, T_CHECKPOINT, T_COMMIT = 1, 2, 3, 4, 5
TAG_NAMES = {1: "entry", 2: "blob", 3: "registry", 4: "checkpoint", 5: "commit"}
COMMIT_LEN = 104

# §"Payloads": the role the signer must hold, by payload name
NEEDS = {"genesis": "admin", "key-add": "admin", "key-rotate": "admin", "key-revoke": "admin",
         "artifact": "owner", "annotation": "reviewer", "acknowledgment": "security-signer",
         "promotion": "owner", "packet": "owner", "narrowing": "owner", "disposition": "owner",
         "decision": "gate-chair"}
KEY_PAYLOADS = ("genesis", "key-add", "key-rotate", "key-revoke")
# §"Limits"
KEY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\Z")
ORIGIN = re.compile(r"[!-*,-~]{1,255}\Z")  # printable ASCII without space and '+'


def u64_list(b): return [struct.unpack_from("<Q", b, i)[0] for i in range(0, len(b) - 7, 8)]


def key_id(pub): return blake3.blake3(KEY_ID + pub).digest()




def stored_hash_index(level, n):
    """Go tlog's StoredHashIndex(level, n)."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


class Tree:
    """The RFC 6962 tree, kept as Go tlog stored hashes."""

    def __init__(self):
        self.hashes, self.leaves = [], 0

    def append(self, stored_entry):
        n = self.leaves
        assert len(self.hashes) == stored_hash_index(0, n)
        h = leaf_hash(stored_entry)
        self.hashes.append(h)
        level = 0
        while n & 1:
            h = node_hash(self.hashes[stored_hash_index(level, n - 1)], h)
            level += 1
            n >>= 1
            assert len(self.hashes) == stored_hash_index(level, n)
            self.hashes.append(h)
        self.leaves += 1

    def count(self, size):
        """Go tlog's StoredHashCount(size)."""
        if size == 0:
            return 0
        c = stored_hash_index(0, size - 1) + 1
        i = size - 1
        while i & 1:
            c += 1
            i >>= 1
        return c

    def root(self, size):
        """RFC 6962 MTH of the first `size` leaves, from the complete subtrees."""
        if size == 0:
            return sha256(b"")
        subs, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                subs.append(self.hashes[stored_hash_index(level, start >> level)])
                start += 1 << level
        h = subs[-1]
        for s in reversed(subs[:-1]):
            h = node_hash(s, h)
        return h


def mth(leaves):
    """RFC 6962 §2.1 MTH, straight from the definition (a cross-check of Tree.root)."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def ed25519_ok(pub, sig, msg):
    """docs/FORMAT.md §"Signature validity" (evl_ed25519.py)."""
    return evl_ed25519.verify_quick(pub, sig, msg)


class Problems:
    # a changed leaf changes every later root and stored hash: a few lines of those say enough
    LIMIT, SHORT = 20, {"root": 3, "index hashes": 3}

    def __init__(self):
        self.count, self.by_kind = 0, {}

    def __call__(self, kind, where, text):
        """One line per problem; past a kind's limit they are only counted."""
        self.count += 1
        n = self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if n <= self.SHORT.get(kind, self.LIMIT):
            print(f"PROBLEM {where}: {text}")

    def flush(self):
        for kind, n in self.by_kind.items():
            limit = self.SHORT.get(kind, self.LIMIT)
            if n > limit:
                print(f"PROBLEM ... and {n - limit} more of kind '{kind}', not shown")


class Registry:
    """The fold of §"Key registry rules"; keys by key id, with the positions they were added and retired at."""

    def __init__(self):
        self.keys = {}  # key id -> dict as KeyState

    def active(self, kid, pos):
        """May key `kid` sign the entry at `pos`? (registered at <= pos, not retired before pos)"""
        k = self.keys.get(kid)
        return k is not None and k["added_at"] <= pos and (k["revoked_at"] is None or k["revoked_at"] >= pos)

    def active_at_size(self, kid, size):
        """Is `kid` active in the tree of `size` entries? (registered by entry size-1, not retired by it)"""
        k = self.keys.get(kid)
        return (k is not None and k["added_at"] < size
                and (k["revoked_at"] is None or k["revoked_at"] >= size))

    def apply(self, pos, name, p):
        """Applies a key payload at position pos; returns an error text or None."""
        def register(grant):
            kid = key_id(grant["public_key"])
            if kid in self.keys:
                return f"public key {grant['public_key'].hex()} is already registered"
            err = None
            if not KEY_NAME.match(grant["name"]):
                err = f"key name {grant['name']!r} outside the §Limits pattern"
            elif not grant["roles"]:
                err = f"key {grant['name']!r} has no role"
            elif any(k["name"] == grant["name"] and k["revoked_at"] is None for k in self.keys.values()):
                err = f"another active key is named {grant['name']!r}"
            self.keys[kid] = {"name": grant["name"], "public_key": grant["public_key"], "roles": list(grant["roles"]),
                              "added_at": pos, "revoked_at": None, "revoked_reason": None}
            return err

        if name == "genesis":
            errs = [f"genesis admin {g['name']!r} does not hold the admin role"
                    for g in p["admins"] if "admin" not in g["roles"]]
            errs += [e for e in map(register, p["admins"]) if e]
            if not p["admins"]:
                errs.append("genesis names no admin")
            return "; ".join(errs) or None
        if name == "key-add":
            return register(p)
        if name == "key-rotate":
            old = self.keys.get(p["old"])
            if old is None or old["revoked_at"] is not None:
                return f"rotates key {p['old'].hex()}, which is not active"
            old["revoked_at"] = pos
            old["revoked_reason"] = ROTATED  # the doc does not say; see ROTATED
            return register({"name": old["name"], "public_key": p["new_key"], "roles": old["roles"]})
        if name == "key-revoke":
            k = self.keys.get(p["key"])
            if k is None or k["revoked_at"] is not None:
                return f"revokes key {p['key'].hex()}, which is not active"
            admins = [i for i, s in self.keys.items() if s["revoked_at"] is None and "admin" in s["roles"]]
            if admins == [p["key"]]:
                return "revokes the last active admin"
            k["revoked_at"], k["revoked_reason"] = pos, p["reason"]
            return None
        return None


# docs/FORMAT.md does not say what `revoked_reason` a rotated key gets; registry snapshots are
# compared with this field ignored for rotated keys (reported in the summary as unchecked).
ROTATED = object()


def parse_note(text):
    """C2SP signed note with a tlog-checkpoint body -> (body, origin, size, root, [(name, raw sig)])."""
    if "\n\n" not in text:
        raise ValueError("no blank line between body and signatures")
    body, sigs = text.split("\n\n", 1)
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) != 3:
        raise ValueError(f"body has {len(lines)} lines, not 3")
    origin, size_s, root_s = lines
    if not re.fullmatch(r"0|[1-9][0-9]*", size_s):
        raise ValueError(f"tree size {size_s!r} is not decimal")
    root = base64.b64decode(root_s, validate=True)
    if len(root) != 32 or base64.b64encode(root).decode() != root_s:
        raise ValueError("root is not standard padded base64 of 32 bytes")
    if not sigs.endswith("\n"):
        raise ValueError("signature lines do not end in a newline")
    out = []
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            raise ValueError(f"bad signature line {line!r}")
        out.append((parts[1], base64.b64decode(parts[2], validate=True)))
    return body, origin, int(size_s), root, out


def check_note(text, origin, registry, tree_root, ledger_size, problem, where):
    """§"Checkpoints". Returns the note's size, or None if it could not be read."""
    try:
        body, n_origin, size, root, sigs = parse_note(text)
    except (ValueError, UnicodeDecodeError) as e:
        problem("checkpoint", where, f"not a signed checkpoint note: {e}")
        return None
    if n_origin != origin:
        problem("checkpoint", where, f"origin {n_origin!r} is not the ledger's origin {origin!r}")
    signed_by = None
    for name, raw in sigs:
        if name != origin or len(raw) != 68:
            continue
        for kid, k in registry.keys.items():
            if "admin" not in k["roles"] or not registry.active_at_size(kid, min(size, ledger_size)):
                continue
            if sha256(origin.encode(), b"\n", b"\x01", k["public_key"])[:4] == raw[:4] and \
                    ed25519_ok(k["public_key"], raw[4:], body.encode()):
                signed_by = k["name"]
    if signed_by is None:
        problem("checkpoint", where, f"no valid signature named {origin!r} by an admin key active at size {size}")
    if size > ledger_size:
        problem("checkpoint", where, f"size {size} exceeds the ledger's {ledger_size}: the ledger was rolled back")
    elif root != tree_root(size):
        problem("checkpoint", where, f"root {root.hex()} is not the tree root at size {size} ({tree_root(size).hex()})")
    return size


def show(v):
    return v.hex() if isinstance(v, bytes) else repr(v)


def entry_blobs(name, p):
    """Digests of the bytes an entry carries, in the order its blob records follow it."""
    if name == "artifact":
        return [p["content"]] + ([p["facts"]["digest"]] if p["facts"] else [])
    if name == "disposition":
        return [p["document"]]
    return []


class Checker:
    """Walks one ledger directory; every method reports through self.problem."""

    def __init__(self, root_dir):
        self.dir, self.problem = root_dir, Problems()
        self.reg, self.tree = Registry(), Tree()
        self.entries = []        # (log offset, stored bytes, id or None)
        self.ids = {}            # id -> entry index
        self.blobs = []          # (log offset, stated digest or None)
        self.blob_bytes = {}     # digest -> (blob number, bytes)
        self.commits = []        # log offsets of commit records
        self.snapshots = 0
        self.checkpoints = []    # (log offset, note bytes, entries in the log when it was stored)
        self.origin = self.genesis_id = None
        self.last_registry = self.last_checkpoint = 0
        self.rotated = 0
        self.runs = {"ids": {}, "blobs": {}}  # kind -> start -> [ends] of runs with the right length

    def read(self, rel):
        with open(os.path.join(self.dir, rel), "rb") as f:
            return f.read()

    # --- evl-store, lock, the log's magic and framing
    def check_files(self):
        try:
            tag = self.read("evl-store")
            if tag != STORE_TAG:
                self.problem("tag", "evl-store", f"is {tag!r}, not {STORE_TAG!r}")
        except OSError as e:
            self.problem("tag", "evl-store", f"cannot read: {e}")
        lock = os.path.join(self.dir, "lock")
        if os.path.exists(lock) and os.path.getsize(lock) != 0:
            self.problem("lock", "lock", f"is {os.path.getsize(lock)} bytes, not empty")
        try:
            self.log = self.read("log")
        except OSError as e:
            self.problem("log", "log", f"cannot read: {e}")
            self.log = b""
        if self.log[:16] != LOG_MAGIC:
            self.problem("log", "log@0", f"starts {self.log[:16]!r}, not the magic {LOG_MAGIC!r}")

    def records(self):
        """-> [(offset, tag, body)] up to the first record whose framing is impossible; sets framing_end."""
        log, out, pos = self.log, [], 16
        while pos + 5 <= len(log):
            tag, length = log[pos], struct.unpack_from("<I", log, pos + 1)[0]
            if tag not in TAG_NAMES or (tag == T_COMMIT and length != COMMIT_LEN) or \
                    (tag == T_ENTRY and length > MAX_ENTRY) or pos + 5 + length > len(log):
                break
            out.append((pos, tag, log[pos + 5:pos + 5 + length]))
            pos += 5 + length
        self.framing_end = pos
        return out

    # --- batches
    def check_log(self):
        records = self.records()
        batch_start = self.committed_end = 16
        i = 0
        while i < len(records):
            j = i
            while j < len(records) and records[j][1] != T_COMMIT:
                j += 1
            if j == len(records):
                break  # no commit closes these records: the tail, see check_tail
            self.check_batch(batch_start, records[i:j], records[j])
            batch_start = self.committed_end = records[j][0] + 5 + COMMIT_LEN
            i = j + 1
        self.check_tail()
        if not self.commits:
            self.problem("log", "log", "no commit record: the ledger is empty")
        if mth([leaf_hash(e[1]) for e in self.entries]) != self.tree.root(len(self.entries)):
            self.problem("root", "self-test", "stored-hash root differs from the recursive MTH (checker bug)")

    def check_batch(self, batch_start, batch, commit):
        where = f"log@{batch_start} batch (commit @{commit[0]})"
        if batch and batch[0][0] != batch_start:
            self.problem("batch", where, f"first record is at {batch[0][0]}, not {batch_start}")
        tags = [t for _, t, _ in batch]
        body = tags[:-1] if tags[-1:] == [T_REGISTRY] else tags
        if tags != [T_CHECKPOINT] and (not body or body[0] != T_ENTRY or
                                       any(t not in (T_ENTRY, T_BLOB) for t in body)):
            self.problem("batch", where, f"records {[TAG_NAMES[t] for t in tags]}: a batch is entries, each followed "
                         "by its blobs, then at most one registry record; or one checkpoint record")
        self.pending, self.current, changed = [], None, False
        for off, tag, rec in batch:
            if tag == T_ENTRY:
                self.unpaid(f"log@{off}")
                changed |= self.check_entry(off, rec)
            elif tag == T_BLOB:
                self.check_blob(off, rec)
            elif tag == T_REGISTRY:
                self.check_registry(off, rec)
            elif tag == T_CHECKPOINT:
                self.last_checkpoint = off
                self.checkpoints.append((off, rec, len(self.entries)))
        self.unpaid(where)
        if changed and T_REGISTRY not in tags:
            self.problem("batch", where, "changes the key registry but has no registry record")
        if T_REGISTRY in tags and not changed:
            self.problem("batch", where, "has a registry record but no key entry")
        self.check_commit(batch_start, *commit)

    def unpaid(self, where):
        if self.pending:
            self.problem("blob", where, f"entry {self.current[0]}'s blob(s) {[d.hex() for d in self.pending]} "
                         "are neither in the ledger nor carried after it")
        self.pending = []

    def check_entry(self, off, rec):
        """Checks one entry record; returns whether it is a key entry."""
        idx, reg = len(self.entries), self.reg
        where = f"log@{off} entry {idx}"
        eid = blake3.blake3(rec[:-64]).digest() if len(rec) >= 64 else None
        self.entries.append((off, rec, eid))
        self.tree.append(rec)
        self.current = None
        if eid is None:
            self.problem("entry", where, f"{len(rec)} bytes is shorter than a signature")
            return False
        if eid in self.ids:  # the doc does not say so, but evl refuses an entry already in the ledger
            self.problem("entry", where, f"id {eid.hex()} is already the id of entry {self.ids[eid]}")
        self.ids.setdefault(eid, idx)
        try:
            f, name, p = decode_entry(rec)
        except (ValueError, UnicodeDecodeError) as e:
            self.problem("entry", where, f"id {eid.hex()}: does not decode: {e}")
            signer = rec[34:66]  # still check the signature: the signer key id is at a fixed offset
            k = reg.keys.get(signer)
            if k is None or not ed25519_ok(k["public_key"], rec[-64:], ENTRY_SIGNATURE + eid):
                self.problem("signature", where, f"id {eid.hex()}: signature does not verify with signer {signer.hex()}")
            return False
        if f["format"] != 1:
            self.problem("entry", where, f"format {f['format']}, not 1")
        if idx == 0:
            self.genesis_id = eid
            if name != "genesis":
                self.problem("entry", where, f"entry 0 is {name}, not genesis")
            if f["ledger"] != bytes(32):
                self.problem("entry", where, "genesis `ledger` is not all zero")
            if name == "genesis":
                self.origin = p["origin"]
                if not ORIGIN.match(self.origin):
                    self.problem("entry", where, f"origin {self.origin!r} outside the §Limits pattern")
        else:
            if name == "genesis":
                self.problem("entry", where, "a second genesis entry")
            if f["ledger"] != self.genesis_id:
                self.problem("entry", where, f"`ledger` {f['ledger'].hex()} is not the genesis id")
        # the signer: registered at <= idx, not retired before idx, holds the role; the signature verifies
        if name == "genesis":
            g = {key_id(g["public_key"]): g for g in p["admins"]}.get(f["signer"])
            pub = g["public_key"] if g else None
            if g is None:
                self.problem("signer", where, f"genesis signer {f['signer'].hex()} is not one of its admins")
        else:
            k = reg.keys.get(f["signer"])
            pub = k["public_key"] if k else None
            if k is None:
                self.problem("signer", where, f"signer {f['signer'].hex()} is not a registered key")
            elif not reg.active(f["signer"], idx):
                self.problem("signer", where, f"signer {k['name']!r} is not active at position {idx} "
                             f"(added {k['added_at']}, retired {k['revoked_at']})")
            elif NEEDS[name] not in k["roles"]:
                self.problem("signer", where, f"signer {k['name']!r} lacks the {NEEDS[name]} role a {name} needs")
        if pub is not None and not ed25519_ok(pub, rec[-64:], ENTRY_SIGNATURE + eid):
            self.problem("signature", where, f"id {eid.hex()}: signature does not verify")
        if name in KEY_PAYLOADS:
            # folded even when its signature or signer failed (reported above), so that one bad
            # entry is one problem, not one per later entry and snapshot
            if name == "key-rotate" and p["old"] in reg.keys:
                self.rotated += 1
            err = reg.apply(idx, name, p)
            if err:
                self.problem("registry", where, f"{name}: {err}")
        self.current = (idx, name, p)
        self.pending = list(dict.fromkeys(d for d in entry_blobs(name, p) if d not in self.blob_bytes))
        if name == "artifact" and p["content"] in self.blob_bytes and \
                len(self.blob_bytes[p["content"]][1]) != p["size"]:
            self.problem("blob", where, f"artifact size {p['size']} but its content is "
                         f"{len(self.blob_bytes[p['content']][1])} bytes")
        return name in KEY_PAYLOADS

    def check_blob(self, off, rec):
        n, cur = len(self.blobs), self.current
        where = f"log@{off} blob {n}"
        if len(rec) < 40:
            self.problem("blob", where, f"body of {len(rec)} bytes is shorter than digest and entry index")
            self.blobs.append((off, None))
            return
        digest, first, data = rec[:32], struct.unpack_from("<Q", rec, 32)[0], rec[40:]
        self.blobs.append((off, digest))
        if blake3.blake3(data).digest() != digest:
            self.problem("blob", where, f"stated digest {digest.hex()} but its bytes hash to "
                         f"{blake3.blake3(data).hexdigest()}")
        if digest in self.blob_bytes:
            self.problem("blob", where, f"digest {digest.hex()} is already stored as blob {self.blob_bytes[digest][0]}")
        else:
            self.blob_bytes[digest] = (n, data)
        if cur is None or first != cur[0]:
            self.problem("blob", where, f"names entry {first} as its first carrier, but follows entry "
                         f"{cur[0] if cur else None}")
        if self.pending and digest == self.pending[0]:
            self.pending.pop(0)
            if cur[1] == "artifact" and digest == cur[2]["content"] and len(data) != cur[2]["size"]:
                self.problem("blob", where, f"artifact size {cur[2]['size']} but its content is {len(data)} bytes")
        else:
            self.problem("blob", where, f"digest {digest.hex()} is not the next blob entry "
                         f"{cur[0] if cur else None} carries (expected "
                         f"{self.pending[0].hex() if self.pending else 'none'})")

    def check_registry(self, off, rec):
        where, reg = f"log@{off} registry", self.reg
        self.last_registry = off
        try:
            r = Reader(rec)
            states = r.vec(r.key_state)
            r.end()
        except (ValueError, UnicodeDecodeError) as e:
            self.problem("registry", where, f"does not decode: {e}")
            return
        self.snapshots += 1
        kids = [key_id(s["public_key"]) for s in states]
        if kids != sorted(set(kids)):
            self.problem("registry", where, "key states are not in ascending, unique key-id order")
        for kid in sorted(set(kids) ^ set(reg.keys)):
            self.problem("registry", where, f"key {kid.hex()[:12]} is " + (
                "in the snapshot but not registered by the log's key entries" if kid in kids else
                "registered by the log's key entries but not in the snapshot"))
        for kid, s in zip(kids, states):
            if kid not in reg.keys:
                continue
            # The doc does not say in which order a KeyState lists its roles; evl writes them
            # ascending by variant index, without duplicates, whatever order the grant had.
            m = dict(reg.keys[kid], roles=sorted(set(reg.keys[kid]["roles"]), key=ROLES.index))
            diff = [k for k in s if k != "revoked_reason" and s[k] != m[k]]
            if m["revoked_reason"] is not ROTATED and s["revoked_reason"] != m["revoked_reason"]:
                diff.append("revoked_reason")
            for k in diff:
                self.problem("registry", where, f"key {kid.hex()[:12]} ({s['name']!r}): {k} is {show(s[k])}, "
                             f"the log's key entries give {show(m[k])}")

    def check_commit(self, batch_start, c_off, _tag, body):
        where, log, size = f"log@{c_off} commit {len(self.commits)}", self.log, len(self.entries)
        self.commits.append(c_off)
        c_size, c_blobs, c_start, c_reg, c_cp = struct.unpack_from("<5Q", body, 0)
        c_root, c_check = body[40:72], body[72:104]
        if c_start != batch_start:
            self.problem("commit", where, f"batch_start {c_start}, the batch starts at {batch_start}")
        want = blake3.blake3(STORE_COMMIT + log[batch_start:c_off + 5 + 72]).digest()
        if c_check != want:
            self.problem("commit", where, f"check {c_check.hex()} does not match the batch's bytes ({want.hex()})")
        if c_size != size:
            self.problem("commit", where, f"size {c_size}, the log holds {size} entries up to it")
        if c_blobs != len(self.blobs):
            self.problem("commit", where, f"blobs {c_blobs}, the log holds {len(self.blobs)} blob records up to it")
        if c_reg != self.last_registry:
            self.problem("commit", where, f"registry pointer {c_reg}, the newest registry record is at {self.last_registry}")
        if c_cp != self.last_checkpoint:
            self.problem("commit", where, f"checkpoint pointer {c_cp}, the newest checkpoint record is at "
                         f"{self.last_checkpoint}")
        if c_root != self.tree.root(size):
            self.problem("root", where, f"root {c_root.hex()} is not the RFC 6962 root at size {size} "
                         f"({self.tree.root(size).hex()})")

    def check_tail(self):
        """Bytes no complete commit covers: what an interrupted append leaves, or damage."""
        end, log = self.committed_end, self.log
        if end >= len(log):
            return
        what = "records without a closing commit" if end < self.framing_end else "bytes that are not a record"
        if end < self.framing_end < len(log):
            what += f", then unreadable framing from {self.framing_end}"
        try:
            later = [o for o in u64_list(self.read("index/commits")) if o >= end]
        except OSError:
            later = []
        if later:
            why = f"the log is damaged here: index/commits names {len(later)} commit(s) past it, the last at {later[-1]}"
        else:
            why = "no reader uses them (an interrupted append leaves these; the next writer cuts them off)"
        self.problem("tail", f"log@{end}", f"{len(log) - end} bytes past the last commit ({what}); {why}")

    # --- checkpoints
    def check_checkpoints(self, note_path):
        for off, rec, at in self.checkpoints:
            try:
                text = rec.decode("utf-8")
            except UnicodeDecodeError:
                self.problem("checkpoint", f"log@{off} checkpoint", "not UTF-8")
                continue
            check_note(text, self.origin, self.reg, self.tree.root, at, self.problem, f"log@{off} checkpoint")
        if note_path:
            try:
                with open(note_path, "rb") as f:
                    text = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as e:
                self.problem("checkpoint", note_path, f"cannot read: {e}")
                return
            check_note(text, self.origin, self.reg, self.tree.root, len(self.entries), self.problem, note_path)

    # --- index files and lookup runs
    def check_index(self):
        size = len(self.entries)
        self.expect = {
            "entries": (8, [struct.pack("<Q", off) for off, _, _ in self.entries]),
            "ids": (48, [index_record("ids", (0, 0), n, (eid or bytes(32)) + struct.pack("<Q", n))
                         for n, (_, _, eid) in enumerate(self.entries)]),
            "blobs": (48, [index_record("blobs", (0, 0), n, (d or bytes(32)) + struct.pack("<Q", off))
                           for n, (off, d) in enumerate(self.blobs)]),
            "hashes": (32, self.tree.hashes[:self.tree.count(size)]),
            "commits": (8, [struct.pack("<Q", off) for off in self.commits]),
        }
        if not os.path.isdir(os.path.join(self.dir, "index")):
            self.problem("index", "index/", "missing (derived data: the next evl command rebuilds it)")
            return
        try:
            tag = self.read("index/format")
        except OSError:
            tag = None
        if tag != INDEX_FORMAT:
            self.problem("index", "index/format", f"is {tag!r}, not {INDEX_FORMAT!r}: the index files are of another "
                         "format (derived data: the next writer rebuilds them)")
            return
        for name, (w, recs) in self.expect.items():
            where = f"index/{name}"
            try:
                got = self.read(where)
            except OSError as e:
                self.problem("index", where, f"cannot read: {e}")
                continue
            if len(got) != w * len(recs):
                self.problem("index", where, f"{len(got)} bytes, the log defines {len(recs)} records of {w} bytes "
                             f"({w * len(recs)} bytes)")
            for n in range(min(len(recs), len(got) // w)):
                if got[n * w:(n + 1) * w] != recs[n]:
                    self.problem(f"index {name}", where,
                                 f"record {n} is {got[n * w:(n + 1) * w].hex()}, the log gives {recs[n].hex()}")
            if name == "commits" and len(got) >= 8:
                last = struct.unpack_from("<Q", got, len(got) - 8)[0]
                if last + 5 > len(self.log) or self.log[last] != T_COMMIT:
                    self.problem("index", where, f"last record points at {last}, where no commit record lies")
        for fn in sorted(os.listdir(os.path.join(self.dir, "index"))):
            if fn not in self.expect and fn != "format":
                self.check_run(fn)
        for kind, starts in self.runs.items():
            at = 0  # the chain a reader uses: from record 0, the longest run at each start
            while at in starts:
                at = max(starts[at])
            total = len(self.expect[kind][1])
            if total - at >= RUN_BATCH:
                self.problem("run", f"index/{kind}", f"runs cover records 0..{at}; the {total - at} records after "
                             f"them are not fewer than {RUN_BATCH}")
            stray = sorted((s, e) for s, es in starts.items() for e in es if s > at)
            if stray:
                print(f"note index/{kind}: runs {stray} are not reachable from record 0 (a reader ignores them)")

    def check_run(self, fn):
        where = f"index/{fn}"
        m = re.fullmatch(r"(ids|blobs)\.(0|[1-9][0-9]*)-(0|[1-9][0-9]*)\.run", fn)
        if not m:
            print(f"note {where}: not a file of store layout 2 (ignored)")
            return
        kind, s, e = m.group(1), int(m.group(2)), int(m.group(3))
        recs = self.expect[kind][1]
        got = self.read(where)
        if got[:16] != RUN_MAGIC:
            self.problem("run", where, f"starts {got[:16]!r}, not the magic {RUN_MAGIC!r}")
        if not s < e:
            self.problem("run", where, "empty or reversed range")
            return
        if e > len(recs):
            self.problem("run", where, f"range ends past the {len(recs)} {kind} records the log defines")
            return
        if len(got) != 16 + 48 * (e - s):
            self.problem("run", where, f"{len(got)} bytes, not the {16 + 48 * (e - s)} its name implies "
                         "(a reader skips it)")
            return
        body = [got[16 + 48 * n:16 + 48 * (n + 1)] for n in range(e - s)]
        if any(a[:32] >= b[:32] for a, b in zip(body, body[1:])):
            self.problem("run", where, "records are not sorted by their keys")
        want = [index_record(kind, (s, e), n, r[:40]) for n, r in enumerate(sorted(r[:40] for r in recs[s:e]))]
        if body != want:
            bad = sum(1 for a, b in zip(body, want) if a != b)
            self.problem("run", where, f"{bad} of {e - s} records differ from the sorted {kind} records {s}..{e}")
        self.runs[kind].setdefault(s, []).append(e)

    def summary(self, note_path):
        self.problem.flush()
        nruns = sum(len(v) for k in self.runs.values() for v in k.values())
        print(f"ledger {self.dir}: {len(self.log)} log bytes, {len(self.entries)} entries, {len(self.blobs)} blobs, "
              f"{self.snapshots} registry snapshots, {len(self.checkpoints)} checkpoints, {len(self.commits)} "
              f"commits, {nruns} lookup runs; origin {self.origin!r}")
        if self.rotated:
            print(f"note: revoked_reason of {self.rotated} rotated key(s) not checked "
                  "(docs/FORMAT.md does not define it)")
        print((f"latest stored checkpoint at log@{self.last_checkpoint}" if self.checkpoints else "no stored checkpoint")
              + (f"; auditor note {note_path}" if note_path else ""))
        if self.problem.count:
            print(f"check_store: {self.problem.count} problem(s)")
            return 1
        print("check_store: every record, index file, run and checkpoint verified")
        return 0


def main():
    args = sys.argv[1:]
    note_path = None
    if "--checkpoint" in args:
        i = args.index("--checkpoint")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        note_path = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1 or args[0].startswith("-"):
        sys.exit(__doc__)
    c = Checker(args[0])
    c.check_files()
    c.check_log()
    c.check_checkpoints(note_path)
    c.check_index()
    sys.exit(c.summary(note_path))


if __name__ == "__main__":
    main()
