"""Audited access: unmasking a record, re-identifying a pseudonym, viewing the trace with keys, releasing a sealed
case, and the account holder's tracker of who looked at their data.

Every access appends its own trace leaf *before* any plaintext is returned; if that write fails, the caller gets
the store's error and no plaintext. A refused attempt (wrong or too few shares, no key for the record) is
logged too, then raised as one clear InputError.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import nacl.public

from ..core.errors import InputError
from ..core.hooks import EncodedTrace
from ..store.base import Store
from ..trace import checkpoint, log
from ..trace.merkle import leaf_hash
from . import mode_module, normalize
from .keys import KeyRing, Share, combine_shares
from .modes.base import dumps, open_data_key, open_with, seal_with
from .observers import keys_for, parse_role
from .views import parse_payload, view_doc

case_length_max = 64
basis_length_max = 512


def _check_text(value: str, name: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"{name} is required: say which case and on what legal basis")
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    return value


def access_record(
    *, mode: str, action: str, record: str, case: str, basis: str, by: str, outcome: str,
    subjects: list[str], tracker_key: bytes, sealed_case: bool, at: int,
) -> EncodedTrace:  # fmt: skip
    doc = {
        "v": 1,
        "type": "access",
        "op_id": f"access:{uuid.uuid4().hex}",
        "at": at,
        "action": action,
        "record": record,
        "case": case,
        "basis": basis,
        "by": by,
        "outcome": outcome,
        "sealed_case": sealed_case,
        # whose data it was: readable only with the operator's tracker key, for the account holders' tracker
        "subjects": seal_with(tracker_key, json.dumps(sorted(set(subjects))).encode()),
    }
    payload = dumps(doc)
    return EncodedTrace(doc["op_id"], at, normalize(mode), payload, leaf_hash(payload))


def find_record(store: Store, ref: str) -> tuple[int, dict]:
    """A stored op record by `#IDX`, or by op id: the record of its application when it was applied (retries
    of the same id leave records too), else its last record."""
    want_idx = int(ref[1:]) if ref.startswith("#") and ref[1:].isdigit() else None
    found = None
    for idx, t in store.traces():
        if (want_idx is not None and idx == want_idx) or (want_idx is None and t.op_id == ref):
            doc = parse_payload(t.payload)
            if doc.get("type", "op") == "op":
                if doc.get("code") == "ok" and want_idx is None:
                    return idx, doc
                found = (idx, doc)
    if found is None:
        raise InputError(f"no trace record {ref!r}")
    return found


@dataclass
class Access:
    store: Store
    ring: KeyRing
    public: dict
    mode: str
    clock: object = time.time

    def now(self) -> int:
        return int(self.clock())  # type: ignore[operator]

    def log(self, action, record, case, basis, by, outcome, subjects=(), sealed_case=False) -> None:
        entry = access_record(
            mode=self.mode, action=action, record=record, case=case, basis=basis, by=by, outcome=outcome,
            subjects=list(subjects), tracker_key=self.ring.secret("operator", "tracker_key"),
            sealed_case=sealed_case, at=self.now(),
        )  # fmt: skip
        log.append(self.store, [entry])
        # checkpointed before reveal: a witness cosigning after this can tell if the access record is removed
        checkpoint.keep(self.store, self.ring.signing_key("operator"), self.now(), self.mode)

    def refuse(self, action, record, case, basis, by, reason, sealed_case=False) -> InputError:
        self.log(action, record, case, basis, by, f"refused: {reason}", sealed_case=sealed_case)
        return InputError(f"refused and logged: {reason}")

    # ---- unmasking one record ------------------------------------------------------------------------------

    def unmask(
        self, ref: str, case: str, basis: str, by: str, shares: list[Share] = (), sealed_case: bool = False
    ) -> dict:
        """The record in clear (as far as `by`'s keys or the quorum's shares open it), logged first."""
        case = _check_text(case, "--case", case_length_max)
        basis = _check_text(basis, "--basis", basis_length_max)
        try:
            parse_role(by)
            idx, doc = find_record(self.store, ref)
        except InputError as exc:
            raise self.refuse("unmask", ref, case, basis, by, str(exc), sealed_case) from None
        mode = normalize(doc.get("mode", "transparent"))
        op_id = doc["op_id"]
        if mode == "escrowed":
            plain = self._open_escrowed(doc, case, basis, by, list(shares), sealed_case)
        elif mode == "selective":
            raise self.refuse("unmask", op_id, case, basis, by,
                              "selective records open only with the account holder's disclosure", sealed_case)  # fmt: skip
        else:
            keys = keys_for(
                by, self.ring, self.store, int(self.store.meta().settings.get("privacy_epoch_s", 604800))
            )
            view = view_doc(idx, doc, keys)
            plain = {f: v.value for f, v in view.fields.items() if v.level == "clear"}
            hidden = [
                f for f in ("payer", "payee") if view.fields[f].level != "clear" and doc.get(f) is not None
            ]
            parties = ("payer", "payee") if mode != "transparent" else tuple(view.fields)
            if not any(view.fields[f].level == "clear" for f in parties):
                raise self.refuse("unmask", op_id, case, basis, by,
                                  f"{by} holds no key that identifies a party of {op_id}", sealed_case)  # fmt: skip
            plain = {"op_id": op_id, "at": doc["at"], "kind": doc.get("kind"), "code": doc.get("code"),
                     **{k: v for k, v in plain.items()}, "still_hidden": hidden}  # fmt: skip
        subjects = [plain.get("payer"), plain.get("payee")]
        self.log("unmask", op_id, case, basis, by, "opened", [s for s in subjects if s], sealed_case)
        return plain

    def _open_escrowed(self, doc, case, basis, by, shares: list[Share], sealed_case) -> dict:
        op_id = doc["op_id"]
        quorum = int(self.public["escrow_quorum"])
        digests = self.public["escrow_share_digests"]
        for s in shares:
            if digests.get(s.holder) != s.digest():
                raise self.refuse("unmask", op_id, case, basis, by,
                                  f"the share given for {s.holder} is not one of this ledger's escrow shares", sealed_case)  # fmt: skip
        if len({s.holder for s in shares}) < quorum:
            raise self.refuse("unmask", op_id, case, basis, by,
                              f"{len({s.holder for s in shares})} key share(s) given; opening needs {quorum} of "
                              f"{len(digests)} ({', '.join(digests)})", sealed_case)  # fmt: skip
        secret = combine_shares(shares)
        box = nacl.public.PrivateKey(secret)
        if bytes(box.public_key).hex() != self.public["escrow_public"]:
            raise self.refuse(
                "unmask", op_id, case, basis, by, "the shares do not combine to the escrow key", sealed_case
            )
        data_key = open_data_key(doc["escrow_key"], box)
        del box, secret
        module = mode_module("escrowed")
        record = None if data_key is None else module.open_record(doc, data_key)
        if record is None:
            raise self.refuse(
                "unmask", op_id, case, basis, by, "the record does not open with the escrow key", sealed_case
            )
        return record

    # ---- cases and the tracker --------------------------------------------------------------------------------

    def release(self, case: str, basis: str, by: str) -> None:
        case = _check_text(case, "CASE", case_length_max)
        doc = {"v": 1, "type": "case_release", "op_id": f"release:{uuid.uuid4().hex}", "at": self.now(),
               "case": case, "basis": _check_text(basis, "--basis", basis_length_max), "by": by}  # fmt: skip
        payload = dumps(doc)
        log.append(
            self.store, [EncodedTrace(doc["op_id"], doc["at"], self.mode, payload, leaf_hash(payload))]
        )

    def tracker(self, account: str) -> list[dict]:
        """Who looked at `account`'s data, when, why; entries of a sealed case appear once it is released."""
        tracker_key = self.ring.secret("operator", "tracker_key")
        entries, released = [], set()
        for idx, t in self.store.traces():
            doc = parse_payload(t.payload)
            kind = doc.get("type")
            if kind == "case_release":
                released.add(doc["case"])
            elif kind == "access":
                opened = open_with(tracker_key, doc["subjects"])
                subjects = json.loads(opened) if opened else []
                if account in subjects:
                    entries.append((idx, doc))
        out = []
        for idx, doc in entries:
            if doc.get("sealed_case") and doc["case"] not in released:
                continue
            out.append({"idx": idx, "at": doc["at"], "by": doc["by"], "action": doc["action"], "record": doc["record"],
                        "case": doc["case"], "basis": doc["basis"], "outcome": doc["outcome"]})  # fmt: skip
        return out
