"""The library face of the `audit`, `trace` and `privacy` commands: each command calls one of these."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import nacl.exceptions
import nacl.public
import nacl.signing

from ..client.keystore import Keystore
from ..core.canonical import check_witness_name
from ..core.errors import InputError
from ..core.records import AddWitness
from ..ledger.journal import check_journal, entry_hash
from ..ledger.signing import verify_all
from ..store.base import Store
from ..trace import bundle as bundles
from ..trace import checkpoint as cps
from ..trace import equivocation, merkle
from ..trace import witness as witnessing
from ..trace.verify import Verification, verify
from . import ensure_keys, keystore_dir_for, normalize, ring_for
from .access import Access
from .keys import (
    PUBLIC_FILE_KIND,
    VIEWING_ATTR,
    is_party_file,
    read_party_file,
    viewing_public_hex,
    viewing_secret,
)
from .observers import keys_for
from .threshold import EscrowPublic, HolderShare, Partial, read_share_file
from .views import RecordView, stored_docs, view_doc


def access_for(store: Store, clock=time.time) -> Access:
    public = ensure_keys(store)
    return Access(store, ring_for(store), public, normalize(store.meta().privacy_mode), clock)


def checkpoint(store: Store, at: int | None = None) -> cps.SignedCheckpoint:
    """Bind the journal head into the trace log, then sign and keep a checkpoint of it with the operator's key."""
    ensure_keys(store)
    when = int(time.time()) if at is None else at
    return cps.keep(
        store, ring_for(store).signing_key("operator"), when, normalize(store.meta().privacy_mode)
    )


def current_checkpoint(store: Store, at: int | None = None) -> cps.SignedCheckpoint:
    """The kept checkpoint of the log as it is now (journal head bound), signing one if there is none."""
    if cps.head_is_bound(store):
        leaves = [t.leaf_hash for _, t in store.traces()]
        now = cps.Checkpoint(cps.origin_for(store.meta().ledger_id), len(leaves), merkle.root(leaves))
        for cp in reversed(cps.saved(store)):
            if cp.checkpoint == now:
                return cp
    return checkpoint(store, at)


def checkpoint_if_due(store: Store) -> cps.SignedCheckpoint | None:
    """Sign a checkpoint when the records not covered by one reach the ledger's `checkpoint_every_records`."""
    due = cps.every(store)
    if due > 0 and cps.records_since_last(store, due) >= due:
        return checkpoint(store)
    return None


def set_checkpoint_interval(store: Store, every: int) -> None:
    """Sign a checkpoint once `every` trace records are not covered by one (0: only when asked or on access)."""
    if every < 0:
        raise InputError("the checkpoint interval is a number of records, 0 or more", where="--every")
    store.set_setting(cps.EVERY_SETTING, every)


def public_key(store: Store) -> str:
    return ensure_keys(store)["checkpoint_key"]


def export(
    store: Store, path: str, with_journal: bool = True, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Sign a checkpoint and stream the bundle to `path`; `progress(done, total)` hears of records written."""
    cp = current_checkpoint(store)
    total = cp.checkpoint.tree_size + (store.head()[0] if with_journal else 0)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(min(done[0], total), total)

    digest, traces, entries = bundles.export(store, path, with_journal, tick)  # streamed: memory stays flat
    cosigned = sum(1 for s in cp.note.signatures if s.name != cp.checkpoint.origin)
    return {"path": path, "sha256": digest, "traces": traces, "journal_entries": entries,
            "checkpoint": {**cp.to_json(), "key": public_key(store), "cosignatures": cosigned}}  # fmt: skip


def read_key(text: str | None) -> str | None:
    """A verify key given as hex, or as a file holding the hex or a checkpoint JSON with `key`."""
    if text is None:
        return None
    candidate = text.strip()
    path = Path(candidate)
    if not _is_hex_key(candidate) and path.exists():
        raw = path.read_text().strip()
        try:
            candidate = json.loads(raw).get("checkpoint_key") or json.loads(raw)["key"]
        except (ValueError, AttributeError, KeyError, TypeError):
            candidate = raw
    if not _is_hex_key(candidate):
        raise InputError("not an Ed25519 public key (64 hex digits)", where="--key")
    return candidate


def _is_hex_key(text: str) -> bool:
    try:
        nacl.signing.VerifyKey(bytes.fromhex(text))
        return True
    except (ValueError, nacl.exceptions.CryptoError, TypeError):
        return False


UNAUTHENTICATED = (
    "NOTHING WAS AUTHENTICATED: --trust-bundle-key checked the bundle against the key written in the bundle "
    "itself, so anyone who re-signs a bundle with a fresh key passes; give the operator's key with --key"
)


def verify_bundle(
    path: str,
    key: str | None,
    earlier: str | None = None,
    trust_bundle_key: bool = False,
    witnesses: tuple[str, ...] = (),
    quorum: int = 0,
) -> Verification:
    """Verify a bundle offline with the operator's key (`key`), and with `witnesses`' keys a quorum of their
    cosignatures. Without `key` it refuses unless `trust_bundle_key`, which authenticates nothing."""
    pk = read_key(key)
    if pk is None and not trust_bundle_key:
        raise InputError(
            "give the operator's public key with --key: a bundle's own key proves nothing, since whoever "
            "re-signs a bundle writes their key into it (--trust-bundle-key checks it anyway, authenticating "
            "nothing)"
        )
    witness_keys = [witnessing.parse_public_key(w) for w in witnesses]
    if quorum > len(set(witness_keys)):
        raise InputError(
            f"--quorum {quorum} needs at least {quorum} distinct --witness keys", where="--quorum"
        )
    b = bundles.read(path)
    result = verify(b, pk or b.checkpoint_key, entry_hash, bundles.read(earlier) if earlier else None,
                    witness_keys, quorum, verify_many=verify_all)  # fmt: skip
    if not b.checkpoints:  # an export always signs one: without any, nothing in the file is the operator's
        result.add("the bundle carries no signed checkpoint (an export always signs one): removed, so nothing in it"
                   " is signed by the operator's key")  # fmt: skip
    if pk is None:
        result.notes.insert(0, UNAUTHENTICATED)
    return result


def verify_live(store: Store, key: str | None = None, earlier: str | None = None) -> Verification:
    """The trace log and checkpoints as a bundle would carry them, and everything the journal re-derives
    (balances, accounts, holds, tags: check_journal; verify() checks the signatures)."""
    b = bundles.from_store(store, with_journal=True)
    pk = read_key(key) or public_key(store)
    found = verify(b, pk, entry_hash, bundles.read(earlier) if earlier else None, verify_many=verify_all)
    for problem in check_journal(store, signatures=False).problems:  # verify() checked the signatures
        found.add(problem)
    return found


def inclusion(store: Store, ref: str, size: int | None = None) -> dict:
    leaves = [(idx, t) for idx, t in store.traces()]
    hashes = [t.leaf_hash for _, t in leaves]
    n = len(hashes) if size is None else size
    want = int(ref[1:]) if ref.startswith("#") and ref[1:].isdigit() else None
    index = next((i for i, (idx, t) in enumerate(leaves) if (idx == want if want else t.op_id == ref)), None)
    if index is None:
        raise InputError(f"no trace record {ref!r}")
    if not 0 < n <= len(hashes) or index >= n:
        raise InputError(f"tree size {n} does not hold record {ref}")
    proof = merkle.inclusion_proof(hashes, index, n)
    root = merkle.root(hashes[:n])
    if not merkle.verify_inclusion(hashes[index], index, n, proof, root):  # both sides of the boundary
        raise AssertionError("an inclusion proof that does not verify")
    return {"index": index, "tree_size": n, "leaf_hash": hashes[index].hex(), "root": root.hex(),
            "proof": [p.hex() for p in proof]}  # fmt: skip


def consistency(store: Store, first: int, second: int | None = None) -> dict:
    hashes = [t.leaf_hash for _, t in store.traces()]
    n = len(hashes) if second is None else second
    if not 0 <= first <= n <= len(hashes):
        raise InputError(f"no consistency proof from {first} to {n} records (the log holds {len(hashes)})")
    proof = merkle.consistency_proof(hashes, first, n)
    return {"first": first, "second": n, "first_root": merkle.root(hashes[:first]).hex(),
            "second_root": merkle.root(hashes[:n]).hex(), "proof": [p.hex() for p in proof]}  # fmt: skip


def view(
    store: Store,
    role: str,
    key_files: tuple[str, ...] = (),
    limit: int | None = None,
    clock=time.time,
    select: Callable[[RecordView], bool] | None = None,
) -> list[RecordView]:
    """The trace as `role` sees it with the keys it holds, given with `--key`: its own key file (written at init or
    at its registration; the operator's keystore gives no role anything), or a disclosure (a viewing key or a signed
    receipt); only the records `select` keeps (judged on what the role sees, so a filter
    reveals nothing the view does not), the last `limit` of them. A role other than the public leaves an
    access record in the log, naming what was shown."""
    meta = store.meta()
    ring = ring_for(store)
    if normalize(meta.privacy_mode) != "transparent" or role != "public":
        ensure_keys(store)
    parties, disclosures = [], []
    for path in key_files:
        data = _read_json(path)
        if data.get("kind") == PUBLIC_FILE_KIND:
            raise InputError("this is the public half of a key: reading takes the private file", where=path)
        if is_party_file(data):
            parties.append(read_party_file(path, meta.ledger_id, meta.settings.get("privacy_public")))
        else:
            disclosures.append((path, data))
    keys = keys_for(role, ring, store, int(meta.settings.get("privacy_epoch_s", 604800)),
                    keystore=Keystore(keystore_dir_for(store)), parties=parties)  # fmt: skip
    for path, data in disclosures:
        if "viewing_secret" in data:
            account, secret = _viewing_secret(store, data, path)
            keys.viewing_boxes[account] = secret
        elif "viewing_key" in data:  # a disclosure of the old layout's operator-kept viewing key
            keys.viewing[str(data.get("account"))] = _viewing_key(data, path)
        else:
            op_id, handle, kind, key = read_receipt(store, path)
            (keys.record_keys if kind == "record_key" else keys.receipts)[(op_id, handle)] = key
    rows = list(store.traces())
    if limit and select is None:
        rows = rows[-limit:]
    views = [view_doc(idx, doc, keys) for idx, doc in stored_docs(store, rows)]
    if select is not None:
        views = [v for v in views if select(v)]
        if limit:
            views = views[-limit:]
    if role != "public":
        shown = {
            v.fields[f].value
            for v in views
            if v.variant
            for f in ("payer", "payee")
            if v.fields[f].level == "clear"
        }
        access_for(store, clock).log("view", "*", "-", "trace view", role, f"viewed {len(views)} records",
                                     [str(s) for s in shown if s])  # fmt: skip
    return views


def shares_from_files(paths: tuple[str, ...]) -> list[HolderShare]:
    return [read_share_file(p) for p in paths]


def partials_from_files(paths: tuple[str, ...]) -> list[Partial]:
    return [Partial.from_json(_read_json(p), p) for p in paths]


def partial(store: Store, ref: str, share_path: str, case: str, basis: str) -> dict:
    """One holder's partial decryption of one escrowed record for one case (on the holder's machine, with the
    holder's share file): proved and signed, to hand to whoever combines. Opens nothing by itself."""
    from .access import _check_text, basis_length_max, case_length_max, find_record, opening_ref
    from .modes.escrowed import kem_of
    from .threshold import opening_statement, partial_decrypt

    case = _check_text(case, "--case", case_length_max)
    basis = _check_text(basis, "--basis", basis_length_max)
    share = read_share_file(share_path)
    meta = store.meta()
    ledger_id = meta.ledger_id
    escrow = (meta.settings.get("privacy_public") or {}).get("escrow")
    if not escrow:
        raise InputError("this ledger has no escrow holders: partial decryptions are for escrowed ledgers")
    problem = share.belongs_to(EscrowPublic.from_json(escrow))
    if problem is not None:
        raise InputError(problem, where=share_path)
    idx, doc = find_record(store, ref)
    if normalize(doc.get("mode", "")) != "escrowed":
        raise InputError(f"{doc['op_id']} is not an escrowed record")
    statement = opening_statement(ledger_id, opening_ref(idx, doc["op_id"]), case, basis)
    return partial_decrypt(share, kem_of(doc), statement).to_json()


# ---- selective mode: disclosures -------------------------------------------------------------------------------


def disclose(store: Store, account: str, op_id: str, signing_key: nacl.signing.SigningKey) -> dict:
    """A receipt, signed with the account's key, that discloses one selective record of `account` and nothing
    else: the record's key, opened with the holder's own keys (its viewing key, or its signing key's X25519 form)."""
    from .access import find_record
    from .keys import signing_box_secret
    from .modes.selective import unseal_with_box

    _idx, doc = find_record(store, op_id)
    if normalize(doc.get("mode", "")) != "selective":
        raise InputError(f"{op_id} is not a selective record")
    ledger_id = store.meta().ledger_id
    rk = unseal_with_box(doc, viewing_secret(bytes(signing_key)), ledger_id)
    if rk is None:
        rk = unseal_with_box(doc, signing_box_secret(signing_key), ledger_id)
    if rk is None:
        raise InputError(f"{op_id} is not a record of {account}, or not one its own keys open")
    body = {"op_id": op_id, "account": account, "record_key": rk.hex()}
    sig = signing_key.sign(json.dumps(body, sort_keys=True).encode()).signature.hex()
    _log_disclosure(store, account, op_id)
    return {**body, "signature": sig}


def _log_disclosure(store: Store, account: str, record: str) -> None:
    """A disclosure is an access like any other: logged, and checkpointed, before its key is handed out, so
    removing the record later breaks consistency with any witness that cosigned after it."""
    access_for(store).log("disclose", record, "-", "the account holder's own disclosure", account, "disclosed",
                          subjects=[account])  # fmt: skip


def disclose_viewing_key(store: Store, account: str, signing_key: nacl.signing.SigningKey) -> dict:
    """The account's viewing key, to hand to whoever the holder chooses (it opens all its selective records); refused
    for an account that registered none (its records are sealed to its signing key's X25519 form)."""
    found = store.account(account)  # type: ignore[attr-defined]
    if found is None:
        raise InputError(f"no account {account!r}")
    if dict(found.attrs).get(VIEWING_ATTR) != viewing_public_hex(signing_key):
        # its records are sealed to its signing key's X25519 form: handing that out would hand out its signing key
        raise InputError(
            f"{account} registered no viewing key: disclose single records with --record, or register one first "
            f"(tenge account update {account} --attr {VIEWING_ATTR}=...)"
        )
    out = {"account": account, "viewing_secret": bytes(viewing_secret(bytes(signing_key))).hex()}
    _log_disclosure(store, account, "viewing key")
    return out


def _viewing_secret(store: Store, data: dict, path: str) -> tuple[str, nacl.public.PrivateKey]:
    account = str(data.get("account"))
    try:
        secret = nacl.public.PrivateKey(bytes.fromhex(data["viewing_secret"]))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise InputError("not a viewing key", where=path) from None
    found = store.account(account)  # type: ignore[attr-defined]
    if found is None or dict(found.attrs).get(VIEWING_ATTR) != bytes(secret.public_key).hex():
        raise InputError(f"not the viewing key {account!r} registered", where=path)
    return account, secret


def _load_json(path: str, what: str) -> object:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"no such {what}", where=path) from None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python recurses
        raise InputError("not JSON", where=path) from None


def _read_json(path: str) -> dict:
    data = _load_json(path, "key file")
    if not isinstance(data, dict):
        raise InputError("not a key file", where=path)
    return data


def _viewing_key(data: dict, path: str) -> bytes:
    try:
        key = bytes.fromhex(data["viewing_key"])
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise InputError("not a viewing key", where=path)
    return key


def read_receipt(store: Store, path: str) -> tuple[str, str, str, bytes]:
    """(op id, account, "record_key" or "wrap_key", the key) of a receipt signed by its account's key."""
    try:
        data = json.loads(Path(path).read_text())
        kind = "record_key" if "record_key" in data else "wrap_key"
        body = {"op_id": data["op_id"], "account": data["account"], kind: data[kind]}
        account = store.account(body["account"])  # type: ignore[attr-defined]
        if account is None:
            raise InputError(f"no account {body['account']}", where=path)
        nacl.signing.VerifyKey(bytes.fromhex(account.public_key)).verify(
            json.dumps(body, sort_keys=True).encode(), bytes.fromhex(data["signature"])
        )
        return body["op_id"], body["account"], kind, bytes.fromhex(body[kind])
    except FileNotFoundError:
        raise InputError("no such receipt", where=path) from None
    except nacl.exceptions.BadSignatureError:
        raise InputError("the receipt is not signed by its account's key", where=path) from None
    except (ValueError, KeyError, TypeError):
        raise InputError("not a disclosure receipt", where=path) from None


# ---- witnesses ------------------------------------------------------------------------------------------------


def witness_registration(name: str, public: str) -> AddWitness:
    """The operation the central bank signs to register a witness (its key as hex or a signed-note verifier key):
    journaled, so the registry is part of the history the witnesses cosign. Apply it through the ledger."""
    from ..trace.note import check_key_name

    check_key_name(name, "NAME")
    return AddWitness(check_witness_name(name, "NAME"), witnessing.parse_public_key(public, "PUBKEY").hex())


def witnesses(store: Store) -> dict[str, str]:
    """Registered witnesses, name -> public key hex, as the journal's add_witness operations made them."""
    return store.witness_registrations()


def witness_cosign(store: Store, folder: str, at: int | None = None) -> dict:
    """The witness in `folder` checks that the log as it is now extends the checkpoint it cosigned last (an
    RFC 6962 consistency proof), cosigns the current checkpoint and remembers it; the cosignature is added to
    the ledger's copy of that checkpoint so audit bundles carry it. Raises witness.NotAnExtension otherwise."""
    w = witnessing.load(folder)
    if witnesses(store).get(w.name) != w.public_key.hex():
        raise InputError(
            f"witness {w.name} is not registered with this ledger: the central bank registers it with "
            f"tenge witness add {w.name} {w.public_key.hex()}"
        )
    cp = current_checkpoint(store, at)
    leaves = [t.leaf_hash for _, t in store.traces()]
    operator_key = bytes.fromhex(public_key(store))
    before = w.last.checkpoint if w.last else None
    cosigned = witnessing.cosign_checkpoint(
        w, cp, leaves, int(time.time()) if at is None else at, operator_key
    )
    cps.save(store, cosigned)
    return {"witness": w.name, "checkpoint": cosigned.render(), "tree_size": cp.checkpoint.tree_size,
            "root": cp.checkpoint.root.hex(), "previous_size": before.tree_size if before else None,
            "previous_root": before.root.hex() if before else None}  # fmt: skip


def witness_check(folder: str, bundle_path: str) -> dict:
    """Is the bundle's trace log an extension of what the witness in `folder` cosigned? Raises
    witness.NotAnExtension (with a proof of equivocation when the bundle holds a conflicting signed checkpoint)."""
    w = witnessing.load(folder)
    b = bundles.read(bundle_path)
    leaves = [t["leaf_hash"] for t in b.traces]
    for t in b.traces:
        if merkle.leaf_hash(t["payload"]) != t["leaf_hash"]:
            raise InputError(f"trace #{t['idx']} does not match its leaf hash", where=bundle_path)
    if w.last is None:
        raise InputError(f"witness {w.name} has cosigned nothing yet: there is nothing to compare with")
    if w.origin != cps.origin_for(b.ledger_id):
        raise InputError(
            f"this witness follows {w.origin}, not {cps.origin_for(b.ledger_id)}", where=bundle_path
        )
    here = cps.Checkpoint(w.origin, len(leaves), merkle.root(leaves))
    # the operator's own latest checkpoint of this history, if the bundle has one: it makes a conflict provable
    signed = [
        c for c in b.checkpoints
        if w.log_key and c.signed_by(w.log_key) and c.checkpoint.tree_size <= len(leaves)
        and merkle.root(leaves[: c.checkpoint.tree_size]) == c.checkpoint.root
    ]  # fmt: skip
    shown = max(signed, key=lambda c: c.checkpoint.tree_size) if signed else None
    if shown is not None and shown.checkpoint.tree_size >= w.last.checkpoint.tree_size:
        witnessing.check_extension(w, shown, leaves, None)  # a conflict comes with the proof of equivocation
    _extends(w, here, leaves)
    return {"witness": w.name, "cosigned_size": w.last.checkpoint.tree_size,
            "cosigned_root": w.last.checkpoint.root.hex(), "tree_size": here.tree_size, "root": here.root.hex()}  # fmt: skip


def _extends(w: witnessing.Witness, here: cps.Checkpoint, leaves: list[bytes]) -> None:
    old = w.last.checkpoint  # type: ignore[union-attr]
    if here.tree_size < old.tree_size:
        raise witnessing.NotAnExtension(
            f"not an extension of what witness {w.name} cosigned: {witnessing.heads(old, here)}; the log shrank:"
            " an older copy was restored (rollback) or records were removed from its end"
        )
    if merkle.root(leaves[: old.tree_size]) != old.root:
        raise witnessing.NotAnExtension(
            f"not an extension of what witness {w.name} cosigned: {witnessing.heads(old, here)}; its first "
            f"{old.tree_size} records have root {merkle.root(leaves[: old.tree_size]).hex()}: the log was "
            "forked, or an earlier record rewritten"
        )


def check_equivocation(path: str, key: str | None = None) -> equivocation.Finding:
    data = _load_json(path, "proof")
    return equivocation.check(data, bytes.fromhex(read_key(key)) if key else None)
