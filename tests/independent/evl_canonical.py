"""The canonical encoding and hashes of docs/FORMAT.md, read from the document alone: the
part both independent checkers (check_vectors.py, check_store.py) need. It shares no code with
evl."""
import hashlib
import struct

# §"Domain separation"
ENTRY_SIGNATURE = b"evl/entry-signature/v1\n"
KEY_ID = b"evl/key-id/v1\n"
# §"Limits"
MAX_ENTRY = 65535
# §"Enumerations"
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

    def end(self):
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} trailing bytes")

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack("<H", self.take(2))[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def i64(self): return struct.unpack("<q", self.take(8))[0]
    def b32(self): return self.take(32)
    def string(self): return self.take(self.u64()).decode("utf-8")

    def bool(self):
        v = self.u8()
        if v > 1:
            raise ValueError("bad bool")
        return v == 1

    def vec(self, f):
        n = self.u64()
        if n > len(self.data) - self.pos:  # every element takes at least one byte
            raise ValueError("list count past the end")
        return [f() for _ in range(n)]

    def opt(self, f):
        tag = self.u8()
        if tag > 1:
            raise ValueError("bad option tag")
        return f() if tag else None

    def enum(self, names):
        v = self.u32()
        if v >= len(names):
            raise ValueError(f"enum index {v} out of range")
        return names[v]

    def sorted_strings(self, what):
        v = self.vec(self.string)
        if any(a.encode() >= b.encode() for a, b in zip(v, v[1:])):
            raise ValueError(f"{what} not sorted ascending and deduplicated")
        return v

    def scope(self):
        return {"namespaces": self.sorted_strings("scope namespaces"),
                "workloads": self.sorted_strings("scope workloads")}

    def grant(self):
        return {"name": self.string(), "public_key": self.b32(), "roles": self.vec(lambda: self.enum(ROLES))}

    def workload(self): return {"namespace": self.string(), "workload": self.string()}

    def sorted_workloads(self, what):
        """A list of WorkloadRef that is a set: strictly ascending by (namespace, workload) bytes."""
        v = self.vec(self.workload)
        ks = [(w["namespace"].encode(), w["workload"].encode()) for w in v]
        if any(a >= b for a, b in zip(ks, ks[1:])):
            raise ValueError(f"{what} not sorted ascending and deduplicated")
        return v

    def labels(self):
        pairs = self.vec(lambda: (self.string(), self.string()))
        keys = [k.encode() for k, _ in pairs]
        if any(a >= b for a, b in zip(keys, keys[1:])):
            raise ValueError("labels not in ascending key order")
        return dict(pairs)

    def basis(self):
        v = self.vec(self.b32)
        if any(a >= b for a, b in zip(v, v[1:])):
            raise ValueError("packet basis not sorted and unique")
        return v

    def payload(self):
        r = self
        table = [
            ("genesis", lambda: {"origin": r.string(), "admins": r.vec(r.grant)}),
            ("key-add", r.grant),
            ("key-rotate", lambda: {"old": r.b32(), "new_key": r.b32()}),
            ("key-revoke", lambda: {"key": r.b32(), "reason": r.string()}),
            ("artifact", lambda: {
                "content": r.b32(), "size": r.u64(), "kind": r.string(), "file_name": r.string(),
                "tier": r.enum(TIERS), "captured_at": r.i64(), "valid_until": r.opt(r.i64),
                "scope": r.scope(), "sealed": r.bool(), "supersedes": r.opt(r.b32),
                "labels": r.labels(),
                "facts": r.opt(lambda: {"parser": r.string(), "parser_version": r.u32(), "digest": r.b32()})}),
            ("annotation", lambda: {"subject": r.b32(), "kind": r.enum(ANNOTATIONS), "scope": r.scope(), "text": r.string()}),
            ("acknowledgment", lambda: {"topic": r.string(), "subject": r.opt(r.b32), "namespace": r.opt(r.string), "statement": r.string()}),
            ("promotion", lambda: {"artifact": r.b32(), "to": r.enum(TIERS), "reason": r.string()}),
            ("packet", lambda: {"name": r.string(), "revision": r.u32(), "parent": r.opt(r.b32), "gate": r.b32(),
                                "checkpoint_at": r.i64(), "in_scope": r.sorted_workloads("packet in_scope"), "basis": r.basis()}),
            ("narrowing", lambda: {"packet": r.b32(), "keep": r.sorted_workloads("narrowing keep"), "rationale": r.string()}),
            ("disposition", lambda: {"packet": r.b32(), "document": r.b32(), "verdict": r.string(), "as_of": r.i64(), "engine_version": r.string()}),
            ("decision", lambda: {"packet": r.b32(), "disposition": r.opt(r.b32), "decision": r.string(), "text": r.string()}),
        ]
        name, f = table[r.enum(range(len(table)))]
        return name, f()

    def key_state(self):
        return {"name": self.string(), "public_key": self.b32(), "roles": self.vec(lambda: self.enum(ROLES)),
                "added_at": self.u64(), "revoked_at": self.opt(self.u64), "revoked_reason": self.opt(self.string)}


def decode_entry(stored):
    """-> (fields, payload name, payload) of stored entry bytes; raises ValueError."""
    if len(stored) > MAX_ENTRY:
        raise ValueError("entry over the 65,535-byte cap")
    r = Reader(stored[:-64])
    fields = {"format": r.u16(), "ledger": r.b32(), "signer": r.b32(), "claimed_at": r.i64()}
    name, payload = r.payload()
    r.end()
    return fields, name, payload


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def node_hash(l, r): return sha256(b"\x01", l, r)


def leaf_hash(b): return sha256(b"\x00", b)
