"""The keystore: a key is read from its file once per Keystore, and what the keystore creates or removes it
knows at once; `tenge submit` does not check again a signature it made with the signer's own key, and still
refuses one made with a key that is not the account's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_cli import new_pilot

from tenge_ledger.client.keystore import Keystore
from tenge_ledger.core.errors import InputError, LedgerStateError
from tenge_ledger.ledger.signing import new_signing_key


def test_get__reads_the_file_once(tmp_path, monkeypatch) -> None:
    keys = Keystore(tmp_path / "keys")
    made = keys.create("halyk")
    reads: list[Path] = []
    read_text = Path.read_text

    def counted(self, *args, **kwargs):
        reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    other = Keystore(tmp_path / "keys")
    assert [bytes(other.get("halyk")) for _ in range(3)] == [bytes(made)] * 3
    assert len(reads) == 1
    assert bytes(keys.get("halyk")) == bytes(made) and len(reads) == 1  # the one that created it knew it


def test_remove__forgets_it_at_once(tmp_path) -> None:
    keys = Keystore(tmp_path / "keys")
    keys.create("halyk")
    keys.get("halyk")
    keys.remove("halyk")
    assert not keys.has("halyk")
    with pytest.raises(InputError, match="no secret key for halyk"):
        keys.get("halyk")
    fresh = keys.create("halyk")  # made again after a failed open: the new key, not the one it forgot
    assert bytes(Keystore(tmp_path / "keys").get("halyk")) == bytes(fresh) == bytes(keys.get("halyk"))


def test_get__a_key_file_others_can_read_is_still_refused(tmp_path) -> None:
    keys = Keystore(tmp_path / "keys")
    keys.create("halyk")
    os.chmod(tmp_path / "keys" / "halyk.key", 0o644)
    with pytest.raises(LedgerStateError, match="readable by others"):
        Keystore(tmp_path / "keys").get("halyk")


def test_submit__a_keystore_key_that_is_not_the_accounts_signs_nothing_that_applies(
    tmp_path, monkeypatch
) -> None:
    # The lines submit signs are not checked again when the key they were signed with is the signer's key in
    # the ledger. One the keystore holds for an account under another key signs transfers that must still be
    # refused: the shortcut compares the keys, it does not trust the keystore.
    pilot = new_pilot(tmp_path, monkeypatch)
    pilot("issue", "halyk", "100.00")
    key_file = Path(pilot.db + ".keys") / "halyk.key"
    key_file.write_text(bytes(new_signing_key()).hex() + "\n")
    done = pilot("--json", "submit", _halyk_pays_aigerim(tmp_path, 3), ok=False)
    assert done.exit_code == 1
    assert json.loads(done.stdout)["codes"] == {"bad_signature": 3}
    assert pilot.json("balance", "aigerim")["balance_tiyn"] == 0


def test_submit__lines_signed_here_apply_without_a_second_check(tmp_path, monkeypatch) -> None:
    from tenge_ledger.ledger import signing

    pilot = new_pilot(tmp_path, monkeypatch)
    pilot("issue", "halyk", "100.00")
    checked: list[int] = []
    verify_chunk = signing.verify_chunk
    monkeypatch.setattr(
        signing, "verify_chunk", lambda items: checked.append(len(items)) or verify_chunk(items)
    )
    done = pilot("--json", "submit", _halyk_pays_aigerim(tmp_path, 5))
    assert json.loads(done.stdout)["codes"] == {"ok": 5}
    assert checked == []  # none verified upfront: each was signed here with halyk's own key
    assert pilot.json("balance", "aigerim")["balance_tiyn"] == 500


def _halyk_pays_aigerim(folder: Path, count: int) -> str:
    """A file of `count` unsigned transfers of 1 KZT from halyk to aigerim, for submit to sign."""
    ops = folder / "ops.jsonl"
    line = {"kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1.00"}
    ops.write_text("".join(json.dumps({"id": f"t-{i}", **line}) + "\n" for i in range(count)))
    return str(ops)
