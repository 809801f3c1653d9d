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

from ..core.canonical import check_text
from ..core.errors import InputError
from ..core.hooks import EncodedTrace
from ..store.base import Store
from ..trace import checkpoint, log
from ..trace.merkle import leaf_hash
from . import normalize
from .keys import KeyRing, PartyKey
from .modes import escrowed
from .modes.base import dumps
from .observers import keys_for, parse_role
from .seal import associated_data, seal_text, unseal_text
from .threshold import (
    EscrowPublic,
    HolderShare,
    Partial,
    check_partial,
    combine,
    opening_statement,
    partial_decrypt,
)
from .views import parse_payload, stored_docs, view_doc

case_length_max = 64
basis_length_max = 512


def _check_text(value: str, name: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"{name} is required: say which case and on what legal basis")
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    # Signed into partials and logged in access records that supervisors read: no newline, escape or bidi
    # override, as for a memo.
    return check_text(value, name, limit)


def subjects_place(ledger_id: str, op_id: str) -> bytes:
    """The associated data of an access record's sealed subjects: this ledger, this access record."""
    return associated_data(ledger_id, op_id, "subjects")


def access_record(
    *, ledger_id: str, mode: str, action: str, record: str, case: str, basis: str, by: str, outcome: str,
    subjects: list[str], tracker_key: bytes, sealed_case: bool, at: int, participants: list[dict] | None = None,
) -> EncodedTrace:  # fmt: skip
    op_id = f"access:{uuid.uuid4().hex}"
    doc = {
        "v": 2,
        "type": "access",
        "op_id": op_id,
        "at": at,
        "action": action,
        "record": record,
        "case": case,
        "basis": basis,
        "by": by,
        "outcome": outcome,
        "sealed_case": sealed_case,
        # whose data it was: readable only with the operator's tracker key, for the account holders' tracker;
        # AEAD with a random nonce, bound to this ledger and this access record, padded to a size class
        "subjects": seal_text(
            tracker_key, json.dumps(sorted(set(subjects))).encode(), subjects_place(ledger_id, op_id)
        ),
    }
    if participants is not None:
        doc["participants"] = participants  # each holder's signed consent to this opening (threshold.Partial)
    payload = dumps(doc)
    return EncodedTrace(op_id, at, normalize(mode), payload, leaf_hash(payload))


def opening_ref(idx: int, op_id: str) -> str:
    """How an opening names its record: trace index and op id (both in the statement each holder signs)."""
    return f"#{idx}:{op_id}"


def find_record(store: Store, ref: str) -> tuple[int, dict]:
    """A stored op record by `#IDX`, or by op id: the record of its application when it was applied (retries
    of the same id leave records too), else its last record."""
    want_idx = int(ref[1:]) if ref.startswith("#") and ref[1:].isdigit() else None
    found = None
    for idx, t in store.traces():
        if (want_idx is not None and idx == want_idx) or (want_idx is None and t.op_id == ref):
            ((_, doc),) = stored_docs(store, [(idx, t)])
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

    @property
    def ledger_id(self) -> str:
        return self.ring.ledger_id

    def log(
        self, action, record, case, basis, by, outcome, subjects=(), sealed_case=False, participants=None
    ) -> None:
        entry = access_record(
            ledger_id=self.ledger_id, mode=self.mode, action=action, record=record, case=case, basis=basis, by=by,
            outcome=outcome, subjects=list(subjects), tracker_key=self.ring.secret("operator", "tracker_key"),
            sealed_case=sealed_case, at=self.now(), participants=participants,
        )  # fmt: skip
        log.append(self.store, [entry])
        # checkpointed before reveal: a witness cosigning after this can tell if the access record is removed
        checkpoint.keep(self.store, self.ring.signing_key("operator"), self.now(), self.mode)

    def refuse(
        self, action, record, case, basis, by, reason, sealed_case=False, participants=None
    ) -> InputError:
        self.log(action, record, case, basis, by, f"refused: {reason}", sealed_case=sealed_case,
                 participants=participants)  # fmt: skip
        return InputError(f"refused and logged: {reason}")

    # ---- unmasking one record ------------------------------------------------------------------------------

    def unmask(
        self, ref: str, case: str, basis: str, by: str | None = None, shares: list[HolderShare] = (),
        sealed_case: bool = False, partials: list[Partial] = (), parties: list[PartyKey] = (),
    ) -> dict:  # fmt: skip
        """The record in clear, logged first. Escrowed records open with k holders' partial decryptions (given,
        or made here from their share files) and are logged as opened by those holders; other modes open as far
        as the keys of the role `by` reach: its own key files (`parties`), never the operator's keystore."""
        case = _check_text(case, "--case", case_length_max)
        basis = _check_text(basis, "--basis", basis_length_max)
        escrowed = normalize(self.mode) == "escrowed"
        # an escrowed opening is logged as done by the holders whose contributions verified, never by a name given
        who = (by or "nobody") if not escrowed else "nobody"
        try:
            if not escrowed:
                if not by:
                    raise InputError("--as is required: say which role opens the record")
                parse_role(by)
            elif by:
                raise InputError("escrowed records are opened by the holders whose shares or partial "
                                 "decryptions are given, not by a role named with --as")  # fmt: skip
            idx, doc = find_record(self.store, ref)
        except InputError as exc:
            raise self.refuse("unmask", ref, case, basis, who, str(exc), sealed_case) from None
        mode = normalize(doc.get("mode", "transparent"))
        op_id = doc["op_id"]
        participants = None
        if mode == "escrowed":
            plain, participants = self._open_escrowed(idx, doc, case, basis, who, list(shares), list(partials),
                                                      sealed_case)  # fmt: skip
            who = "+".join(p["holder"] for p in participants)
        elif mode == "selective":
            raise self.refuse("unmask", op_id, case, basis, who,
                              "selective records open only with the account holder's disclosure", sealed_case)  # fmt: skip
        else:
            try:
                keys = keys_for(who, self.ring, self.store,
                                int(self.store.meta().settings.get("privacy_epoch_s", 604800)), parties=parties)  # fmt: skip
            except InputError as exc:
                raise self.refuse("unmask", op_id, case, basis, who, str(exc), sealed_case) from None
            view = view_doc(idx, doc, keys)
            plain = {f: v.value for f, v in view.fields.items() if v.level == "clear"}
            hidden = [
                f for f in ("payer", "payee") if view.fields[f].level != "clear" and doc.get(f) is not None
            ]
            who_fields = ("payer", "payee") if mode != "transparent" else tuple(view.fields)
            if not any(view.fields[f].level == "clear" for f in who_fields):
                hint = "" if parties else " (a role's key is its own file: give it with --key)"
                raise self.refuse("unmask", op_id, case, basis, who,
                                  f"{who} holds no key that identifies a party of {op_id}{hint}", sealed_case)  # fmt: skip
            plain = {"op_id": op_id, "at": doc["at"], "kind": doc.get("kind"), "code": doc.get("code"),
                     **{k: v for k, v in plain.items()}, "still_hidden": hidden}  # fmt: skip
        subjects = [plain.get("payer"), plain.get("payee")]
        self.log("unmask", op_id, case, basis, who, "opened", [s for s in subjects if s], sealed_case,
                 participants)  # fmt: skip
        return plain

    def _open_escrowed(
        self, idx, doc, case, basis, who, shares, partials, sealed_case
    ) -> tuple[dict, list[dict]]:
        """Verify each holder's partial decryption (made here from a share file, or given), combine k of them into
        this record's key, open the record. Every refusal names its cause and is logged with the consents that
        did verify."""
        op_id = doc["op_id"]
        escrow = EscrowPublic.from_json(self.public["escrow"])
        module = escrowed
        kem = module.kem_of(doc)
        ref = opening_ref(idx, op_id)
        statement = opening_statement(self.ledger_id, ref, case, basis)
        good: list[Partial] = []

        def consents() -> list[dict]:
            return [dict(p.consent(), record=ref) for p in sorted(good, key=lambda p: p.index)]

        def refuse(reason: str) -> InputError:
            verified = "+".join(p.holder for p in sorted(good, key=lambda p: p.index)) or "nobody"
            return self.refuse("unmask", op_id, case, basis, verified, reason, sealed_case, consents())

        made_here = []
        for share in shares:
            problem = share.belongs_to(escrow)
            if problem is not None:
                raise refuse(problem)
            made_here.append(partial_decrypt(share, kem, statement))
        seen: set[str] = set()
        for p in made_here + partials:
            if p.holder in seen:
                raise refuse(f"{p.holder} contributed twice")
            reason = check_partial(escrow, p, kem, statement)
            if reason is not None:
                raise refuse(reason)
            seen.add(p.holder)
            good.append(p)
        if len(good) < escrow.threshold:
            names = ", ".join(h.name for h in escrow.holders)
            raise refuse(f"{len(good)} holder(s) took part ({'+'.join(p.holder for p in good) or 'none'}); opening "
                         f"needs {escrow.threshold} of {len(escrow.holders)} ({names})")  # fmt: skip
        key = combine(escrow, good, kem, statement)
        record = module.open_record(doc, self.ledger_id, key)
        if record is None:
            raise refuse("the record does not open with the key the holders' partial decryptions give")
        return record, consents()

    # ---- cases and the tracker --------------------------------------------------------------------------------

    def release(self, case: str, basis: str, by: str) -> None:
        case = _check_text(case, "CASE", case_length_max)
        doc = {"v": 2, "type": "case_release", "op_id": f"release:{uuid.uuid4().hex}", "at": self.now(),
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
                opened = unseal_text(
                    tracker_key, doc["subjects"], subjects_place(self.ledger_id, doc["op_id"])
                )
                subjects = json.loads(opened) if opened else []
                if account in subjects:
                    entries.append((idx, doc))
        out = []
        for idx, doc in entries:
            if doc.get("sealed_case") and doc["case"] not in released:
                continue
            entry = {"idx": idx, "at": doc["at"], "by": doc["by"], "action": doc["action"], "record": doc["record"],
                     "case": doc["case"], "basis": doc["basis"], "outcome": doc["outcome"]}  # fmt: skip
            if "participants" in doc:
                entry["participants"] = doc["participants"]
            out.append(entry)
        return out


def verify_participants(store: Store, public: dict, idx: int) -> list[str]:
    """The holders whose signed consent the access record at trace index `idx` carries, each checked against the
    holder's public verify key and the statement (ledger, record, case, basis) it was given for. Raises
    InputError naming a consent that does not verify."""
    import nacl.exceptions
    import nacl.signing

    from .threshold import consent_message

    entry = next((parse_payload(t.payload) for i, t in store.traces() if i == idx), None)
    if entry is None or entry.get("type") != "access":
        raise InputError(f"trace record #{idx} is not an access record")
    escrow = EscrowPublic.from_json(public["escrow"])
    ledger_id = store.meta().ledger_id
    out = []
    for consent in entry.get("participants", []):
        holder = escrow.holder(consent["holder"])
        try:
            if holder is None or not str(consent["record"]).endswith(":" + entry["record"]):
                raise ValueError
            statement = opening_statement(ledger_id, consent["record"], entry["case"], entry["basis"])
            nacl.signing.VerifyKey(holder.verify_key).verify(
                consent_message(statement, consent["holder"], bytes.fromhex(consent["digest"])),
                bytes.fromhex(consent["signature"]),
            )
        except (nacl.exceptions.BadSignatureError, ValueError, KeyError):
            raise InputError(f"the consent of {consent.get('holder')!r} in #{idx} does not verify") from None
        out.append(consent["holder"])
    return out
