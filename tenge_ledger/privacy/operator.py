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
from ..core.errors import InputError
from ..ledger.journal import check_journal, entry_hash
from ..store.base import Store
from ..trace import bundle as bundles
from ..trace import checkpoint as cps
from ..trace import merkle
from ..trace.verify import Verification, verify
from . import ensure_keys, keystore_dir_for, normalize, ring_for
from .access import Access
from .keys import VIEWING_ATTR, viewing_public_hex, viewing_secret
from .observers import keys_for
from .threshold import HolderShare, Partial, read_share_file
from .views import RecordView, view_payload


def access_for(store: Store, clock=time.time) -> Access:
    public = ensure_keys(store)
    return Access(store, ring_for(store), public, normalize(store.meta().privacy_mode), clock)


def checkpoint(store: Store, at: int | None = None) -> cps.Checkpoint:
    """Sign and keep a checkpoint of the current trace log and journal head with the operator's key."""
    ensure_keys(store)
    cp = cps.make(store, ring_for(store).signing_key("operator"), int(time.time()) if at is None else at)
    cps.save(store, cp)
    return cp


def public_key(store: Store) -> str:
    return ensure_keys(store)["checkpoint_key"]


def export(store: Store, path: str, with_journal: bool = True) -> dict:
    cp = checkpoint(store)
    b = bundles.from_store(store, with_journal)
    digest = bundles.write(b, path)
    return {"path": path, "sha256": digest, "traces": len(b.traces), "journal_entries": len(b.journal or []),
            "checkpoint": cp.to_json()}  # fmt: skip


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


def verify_bundle(path: str, key: str | None, earlier: str | None = None) -> Verification:
    b = bundles.read(path)
    pk = read_key(key)
    result = verify(b, pk or b.checkpoint_key, entry_hash, bundles.read(earlier) if earlier else None)
    if pk is None:
        result.notes.insert(0, "no --key given: trusted the key written in the bundle itself")
    return result


def verify_live(store: Store, key: str | None = None, earlier: str | None = None) -> Verification:
    """The trace log and checkpoints as a bundle would carry them, and everything the journal re-derives
    (signatures, balances, accounts, holds, tags: check_journal)."""
    b = bundles.from_store(store, with_journal=True)
    pk = read_key(key) or public_key(store)
    found = verify(b, pk, entry_hash, bundles.read(earlier) if earlier else None)
    for problem in check_journal(store).problems:
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
    """The trace as `role` sees it with the keys it holds, plus disclosures given with `--key` (a viewing key
    file or a signed receipt); only the records `select` keeps (judged on what the role sees, so a filter
    reveals nothing the view does not), the last `limit` of them. A role other than the public leaves an
    access record in the log, naming what was shown."""
    meta = store.meta()
    ring = ring_for(store)
    if normalize(meta.privacy_mode) != "transparent" or role != "public":
        ensure_keys(store)
    keys = keys_for(role, ring, store, int(meta.settings.get("privacy_epoch_s", 604800)),
                    keystore=Keystore(keystore_dir_for(store)))  # fmt: skip
    for path in key_files:
        data = _read_json(path)
        if "viewing_secret" in data:
            account, secret = _viewing_secret(store, data, path)
            keys.viewing_boxes[account] = secret
        elif "viewing_key" in data:
            keys.viewing[str(data.get("account"))] = _viewing_key(data, path)
        else:
            op_id, handle, kind, key = read_receipt(store, path)
            (keys.record_keys if kind == "record_key" else keys.receipts)[(op_id, handle)] = key
    rows = list(store.traces())
    if limit and select is None:
        rows = rows[-limit:]
    views = [view_payload(idx, t.payload, keys) for idx, t in rows]
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
    ledger_id = store.meta().ledger_id
    if share.ledger_id != ledger_id:
        raise InputError(f"this share belongs to another ledger ({share.ledger_id})", where=share_path)
    idx, doc = find_record(store, ref)
    if normalize(doc.get("mode", "")) != "escrowed":
        raise InputError(f"{doc['op_id']} is not an escrowed record")
    statement = opening_statement(ledger_id, opening_ref(idx, doc["op_id"]), case, basis)
    return partial_decrypt(share, kem_of(doc), statement).to_json()


# ---- selective mode: disclosures -------------------------------------------------------------------------------


def disclose(store: Store, account: str, op_id: str, signing_key: nacl.signing.SigningKey) -> dict:
    """A receipt, signed with the account's key, that discloses one selective record of `account` and nothing
    else: the record's key when it was sealed to the account's viewing key (made here from the holder's signing
    key), else its wrap key under the operator-kept viewing key."""
    from .access import find_record
    from .modes.selective import record_key_for, unseal_with_box, wrap_key
    from .seal import unb64

    _idx, doc = find_record(store, op_id)
    if normalize(doc.get("mode", "")) != "selective":
        raise InputError(f"{op_id} is not a selective record")
    ledger_id = store.meta().ledger_id
    rk = unseal_with_box(doc, viewing_secret(bytes(signing_key)), ledger_id)
    if rk is not None:
        body = {"op_id": op_id, "account": account, "record_key": rk.hex()}
    else:
        ring = ring_for(store)
        if not ring.exists(f"account:{account}"):
            raise InputError(f"{op_id} is not a record of {account}")
        vk = bytes.fromhex(ring.read(f"account:{account}")["viewing_key"])
        if record_key_for(doc, vk, ledger_id) is None:
            raise InputError(f"{op_id} is not a record of {account}")
        body = {"op_id": op_id, "account": account, "wrap_key": wrap_key(vk, unb64(doc["salt"])).hex()}
    sig = signing_key.sign(json.dumps(body, sort_keys=True).encode()).signature.hex()
    return {**body, "signature": sig}


def disclose_viewing_key(store: Store, account: str, signing_key: nacl.signing.SigningKey) -> dict:
    """The account's viewing key, to hand to whoever the holder chooses (it opens all its selective records): the
    one derived from its signing key when it registered it, else the operator-kept one."""
    found = store.account(account)  # type: ignore[attr-defined]
    if found is None:
        raise InputError(f"no account {account!r}")
    if dict(found.attrs).get(VIEWING_ATTR) == viewing_public_hex(signing_key):
        return {"account": account, "viewing_secret": bytes(viewing_secret(bytes(signing_key))).hex()}
    return {"account": account, "viewing_key": ring_for(store).ensure_account(account)["viewing_key"]}


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


def _read_json(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError("no such key file", where=path) from None
    except ValueError:
        raise InputError("not JSON", where=path) from None
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
