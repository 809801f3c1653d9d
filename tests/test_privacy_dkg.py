"""No dealer: the escrow holders generate the escrow key among themselves (joint-Feldman), and the readers make their
own keys. Every k of n holders open a record sealed to the generated key and fewer do not; a dealer whose share or
dealing is wrong is refused and named, by the holders and by the operator's `init`; everything the operator has
(keystore, database, every public dealing) opens nothing; a reader's self-made key opens what it should, and no
operator file holds a reader's private key."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core.errors import InputError
from tenge_ledger.privacy import dkg, operator
from tenge_ledger.privacy import threshold as th
from tenge_ledger.privacy.keys import PartyKey, read_party_file
from tenge_ledger.privacy.modes import escrowed
from tenge_ledger.privacy.seal import frame
from tenge_ledger.privacy.views import parse_payload
from tenge_ledger.store import open_store

LEDGER = "cd" * 16
NAMES = ("fma", "court", "central_bank", "ombudsman", "senate")


def ceremony_of(n: int, k: int, ceremony_id: str = "pilot-2026"):
    identities = [dkg.keygen(name) for name in NAMES[:n]]
    return identities, dkg.make_ceremony(ceremony_id, k, [i.card() for i in identities])


def statement(record: str = "#4:op-4") -> bytes:
    return th.opening_statement(LEDGER, record, "C-1", "court order 1")


def point_sum(points) -> bytes:
    total = None
    for p in points:
        total = p if total is None else sodium.crypto_core_ed25519_add(total, p)
    return total


# ---- the scheme on its own ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(3, 2), (5, 3)])
def test_dkg__every_k_subset_opens_and_fewer_cannot(n, k):
    identities, ceremony = ceremony_of(n, k)
    dealings = [dkg.deal(i, ceremony) for i in identities]
    shares = [dkg.finish(i, dealings) for i in identities]
    public = dkg.escrow_public(LEDGER, dealings)
    # the group key is the sum of the dealers' constant-term commitments, and every share file names it
    assert public.group_public == point_sum(d.commitments[0] for d in dealings)
    assert {s.group_public for s in shares} == {public.group_public}
    assert len({s.transcript for s in shares}) == 1 and shares[0].transcript == public.transcript
    for share, holder in zip(shares, public.holders, strict=True):
        assert th.base_mul(share.secret) == holder.verification_point and share.index == holder.index
    kem, key = th.encapsulate(LEDGER, public.group_public)
    partials = [th.partial_decrypt(s, kem, statement()) for s in shares]
    for subset in itertools.combinations(partials, k):
        assert th.combine(public, list(subset), kem, statement()) == key
    for subset in itertools.combinations(range(n), k - 1):
        with pytest.raises(InputError, match=f"opening needs {k} of {n}"):
            th.combine(public, [partials[i] for i in subset], kem, statement())
        # k-1 shares interpolated as if they were enough give neither the escrow key nor the record's key
        indices = [shares[i].index for i in subset]
        guess = sum(th.lagrange_at_zero(shares[i].index, indices) * shares[i].secret for i in subset) % th.L
        assert th.base_mul(guess) != public.group_public
        assert th.record_key(LEDGER, kem, th.mul(guess, kem)) != key


def test_dkg__the_shares_are_shares_of_one_key_that_no_dealing_holds():
    identities, ceremony = ceremony_of(3, 2)
    dealings = [dkg.deal(i, ceremony) for i in identities]
    shares = [dkg.finish(i, dealings) for i in identities]
    x = (
        sum(th.lagrange_at_zero(s.index, [1, 2, 3]) * s.secret for s in shares) % th.L
    )  # only the test forms it
    public = dkg.escrow_public(LEDGER, dealings)
    assert th.base_mul(x) == public.group_public
    for d in dealings:  # every dealer's own contribution is only a part of it
        assert d.commitments[0] != public.group_public


def deal_wrongly(identity, ceremony, *, to: int | None = None, extra=0, place_index=None, coeffs=None):
    """A dealing made by hand, signed by its dealer: the share to holder `to` off by `extra`, or sealed for
    another recipient index (`place_index`), or with `coeffs` of the test's choosing."""
    me = ceremony.index_of(identity.holder)
    coeffs = coeffs or [th.random_scalar() for _ in range(ceremony.threshold)]
    sealed = []
    for j, card in enumerate(ceremony.holders, start=1):
        value = sum(a * pow(j, t, th.L) for t, a in enumerate(coeffs)) % th.L
        if j == to:
            value = (value + extra) % th.L
        place = place_index if (j == to and place_index is not None) else j
        plain = dkg._share_prefix(ceremony.digest(), me, place, card) + frame(th.scalar_bytes(value))
        sealed.append(nacl.public.SealedBox(nacl.public.PublicKey(card.box_public)).encrypt(plain))
    unsigned = dkg.Dealing(
        ceremony, identity.holder, me, tuple(th.base_mul(a) for a in coeffs), tuple(sealed)
    )
    return replace(unsigned, signature=identity.signing_key.sign(unsigned.message()).signature)


def test_dkg__a_share_that_does_not_match_its_commitments_is_refused_naming_the_dealer():
    identities, ceremony = ceremony_of(3, 2)
    fma, court, cb = identities
    dealings = [dkg.deal(fma, ceremony), deal_wrongly(court, ceremony, to=1, extra=1), dkg.deal(cb, ceremony)]
    with pytest.raises(InputError, match="the share court dealt to fma does not match court's commitments"):
        dkg.finish(fma, dealings)
    # the dealing itself is well formed, so only its victim can tell: the others finish
    assert dkg.finish(cb, dealings).holder == "central_bank"


def test_dkg__a_share_sealed_for_another_place_is_refused_naming_the_dealer():
    identities, ceremony = ceremony_of(3, 2)
    fma, court, cb = identities
    dealings = [
        dkg.deal(fma, ceremony),
        deal_wrongly(court, ceremony, to=1, place_index=3),
        dkg.deal(cb, ceremony),
    ]
    with pytest.raises(InputError, match="the share court dealt to fma is bound to another place"):
        dkg.finish(fma, dealings)


def bad_dealings(variant: str):
    """(identities, the three dealings with the court's one made wrong as `variant` says, what the refusal says)."""
    identities, ceremony = ceremony_of(3, 2)
    fma, court, cb = identities
    good = [dkg.deal(fma, ceremony), dkg.deal(court, ceremony), dkg.deal(cb, ceremony)]
    if variant == "bad signature":
        other = th.base_mul(th.random_scalar())
        bad = replace(good[1], commitments=(other, *good[1].commitments[1:]))
        return identities, [good[0], bad, good[2]], "the dealing of court is not signed by court"
    if variant == "wrong ceremony id":
        elsewhere = dkg.make_ceremony("another-ceremony", 2, ceremony.holders)
        return (
            identities,
            [good[0], dkg.deal(court, elsewhere), good[2]],
            ("the dealing of court is for ceremony 'another-ceremony', not 'pilot-2026'"),
        )
    if variant == "missing holder":
        return identities, [good[0], good[2]], "no dealing from court"
    if variant == "commitments of the wrong count":
        bad = deal_wrongly(court, ceremony, coeffs=[th.random_scalar() for _ in range(3)])
        return (
            identities,
            [good[0], bad, good[2]],
            "the dealing of court has 3 commitments; a threshold of 2 needs 2",
        )
    if variant == "other holders":
        someone = dkg.keygen("court")
        swapped = dkg.make_ceremony("pilot-2026", 2, [fma.card(), someone.card(), cb.card()])
        return identities, [good[0], dkg.deal(someone, swapped), good[2]], "names other holders"
    raise AssertionError(variant)


BAD_VARIANTS = ("bad signature", "wrong ceremony id", "missing holder", "commitments of the wrong count",
                "other holders")  # fmt: skip


@pytest.mark.parametrize("variant", BAD_VARIANTS)
def test_dkg__a_bad_dealing_is_refused_by_finish(variant):
    identities, dealings, says = bad_dealings(variant)
    with pytest.raises(InputError, match=re.escape(says)):
        dkg.finish(identities[0], dealings)


@pytest.mark.parametrize("variant", BAD_VARIANTS)
def test_dkg__a_bad_dealing_is_refused_by_init(tmp_path, variant):
    _, dealings, says = bad_dealings(variant)
    paths = []
    for i, d in enumerate(dealings):
        paths += ["--escrow-dealing", str(tmp_path / f"{i}.dealing")]
        dkg.write_dealing(tmp_path / f"{i}.dealing", d)
    db = tmp_path / "e.db"
    r = CliRunner().invoke(cli, ["--db", str(db), "init", "--name", "E", "--privacy", "escrowed", *paths])
    assert r.exit_code == 1 and says in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not db.exists()


def test_dkg__a_dealing_must_come_from_a_holder_of_the_ceremony():
    identities, ceremony = ceremony_of(3, 2)
    with pytest.raises(InputError, match="is not a holder of ceremony"):
        dkg.deal(dkg.keygen("fma"), ceremony)  # the name is a holder's, the key is not
    with pytest.raises(InputError, match="share a name"):
        dkg.make_ceremony("x", 2, [identities[0].card(), identities[0].card()])
    card = identities[1].card().to_json()
    card["box_public"] = identities[2].card().to_json()["box_public"]
    with pytest.raises(InputError, match="not signed by its own key"):
        dkg.HolderCard.from_json(card, "court.card")


# ---- the operator's view: everything public, nothing that opens -------------------------------------------------


def run(*args, cwd: Path | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def holders_generate(tmp_path: Path, names=("fma", "court", "central_bank"), k=2, ceremony="pilot-2026"):
    """Each holder in its own directory runs keygen, deal and finish through the CLI; returns the dealing paths."""
    cards, dealings = [], []
    for h in names:
        (tmp_path / h).mkdir(mode=0o700)
        r = run(
            "escrow", "keygen", h, "--out", tmp_path / h / "identity", "--public-out", tmp_path / f"{h}.card"
        )
        assert r.exit_code == 0, r.output
        cards += ["--holder", tmp_path / f"{h}.card"]
    for h in names:
        r = run("escrow", "deal", "--identity", tmp_path / h / "identity", "--ceremony", ceremony,
                "--threshold", k, *cards, "--out", tmp_path / f"{h}.dealing")  # fmt: skip
        assert r.exit_code == 0, r.output
        dealings.append(tmp_path / f"{h}.dealing")
    given = [a for d in dealings for a in ("--dealing", d)]
    for h in names:
        r = run("--json", "escrow", "finish", "--identity", tmp_path / h / "identity", *given,
                "--out", tmp_path / h / "share", "--acceptance-out", tmp_path / f"{h}.ok")  # fmt: skip
        assert r.exit_code == 0, r.output
        assert (tmp_path / h / "share").stat().st_mode & 0o777 == 0o600
    return dealings


def init_from_dealings(tmp_path: Path, dealings, accepted: bool = True) -> str:
    db = str(tmp_path / "e.db")
    given = [a for d in dealings for a in ("--escrow-dealing", d)]
    if accepted:
        given += [a for d in dealings for a in ("--escrow-acceptance", str(d).replace(".dealing", ".ok"))]
    r = run("--db", db, "init", "--name", "E", "--privacy", "escrowed", *given)
    assert r.exit_code == 0, r.output
    for args in (("account", "open", "halyk", "--kind", "bank"),
                 ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"),
                 ("account", "open", "nurlan", "--kind", "person", "--bank", "halyk"),
                 ("issue", "aigerim", "100"),
                 ("transfer", "aigerim", "nurlan", "12.34", "--id", "secret-pay", "--memo", "consulting")):  # fmt: skip
        r = run("--db", db, *args)
        assert r.exit_code == 0, r.output
    return db


def hex_values(paths) -> set[bytes]:
    found: set[bytes] = set()
    for path in paths:
        text = Path(path).read_bytes().decode("latin-1")
        found |= {bytes.fromhex(h) for h in re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text)}
    return found


def operator_files(db: str) -> list[Path]:
    keystore = [p for p in Path(db + ".keys").rglob("*") if p.is_file()]
    return keystore + [p for p in Path(db).parent.glob(Path(db).name + "*") if p.is_file()]


def test_dkg__the_operators_keystore_database_and_every_dealing_open_no_escrowed_record(tmp_path):
    dealings = holders_generate(tmp_path)
    db = init_from_dealings(tmp_path, dealings)
    operator_has = operator_files(db) + list(dealings)
    candidates = hex_values(operator_has)
    assert len(candidates) > 10  # commitments, keys, digests: the test does look at them
    store = open_store(db)
    ledger_id = store.meta().ledger_id
    public = th.EscrowPublic.from_json(store.meta().settings["privacy_public"]["escrow"])
    docs = [parse_payload(t.payload) for _, t in store.traces()]
    store.close()
    docs = [d for d in docs if d.get("mode") == "escrowed" and d.get("type") == "op"]
    assert len(docs) >= 5
    secrets = {h: th.read_share_file(tmp_path / h / "share") for h in ("fma", "court", "central_bank")}
    idents = {h: dkg.read_identity(tmp_path / h / "identity") for h in secrets}
    # no holder's secret is anywhere the operator can read
    held = {th.scalar_bytes(s.secret) for s in secrets.values()}
    held |= {i.signing_seed for i in idents.values()} | {i.box_secret for i in idents.values()}
    assert not held & candidates
    parsed = [dkg.read_dealing(d) for d in dealings]
    sealed_shares = [s for d in parsed for s in d.sealed]
    scalars = [th.scalar_int(v) for v in candidates if th.scalar_int(v)]
    for doc in docs:
        kem = escrowed.kem_of(doc)
        for value in candidates:  # as the record's key
            assert escrowed.open_record(doc, ledger_id, value) is None
        for x in scalars:  # as the escrow scalar
            assert escrowed.open_record(doc, ledger_id, th.record_key(ledger_id, kem, th.mul(x, kem))) is None
    # as k shares: pairs of candidates taken as two holders' shares, interpolated as a quorum would
    for x1, x2 in itertools.product(scalars[:40], repeat=2):
        x = (th.lagrange_at_zero(1, [1, 2]) * x1 + th.lagrange_at_zero(2, [1, 2]) * x2) % th.L
        assert x == 0 or th.base_mul(x) != public.group_public
    for value in candidates:  # as a holder's box key on every sealed share
        box = nacl.public.SealedBox(nacl.public.PrivateKey(value))
        for sealed in sealed_shares:
            with pytest.raises(nacl.exceptions.CryptoError):
                box.decrypt(sealed)
    # the same attacks with what the holders have do work: the attack would see a leak
    assert nacl.public.SealedBox(idents["fma"].box_key).decrypt(parsed[1].sealed[0])
    kem = escrowed.kem_of(docs[-1])
    st = th.opening_statement(ledger_id, "#0:x", "c", "b")
    parts = [th.partial_decrypt(secrets[h], kem, st) for h in ("fma", "court")]
    assert escrowed.open_record(docs[-1], ledger_id, th.combine(public, parts, kem, st)) is not None


# ---- end to end through the CLI -----------------------------------------------------------------------------------


def test_cli_dkg__holders_generate_the_key_and_two_of_them_open_a_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the holder commands need no ledger database, and make none
    dealings = holders_generate(tmp_path)
    assert not (tmp_path / "tenge.db").exists()
    db = init_from_dealings(tmp_path, dealings, accepted=True)
    info = json.loads(run("--db", db, "--json", "info").output)["escrow"]
    share = th.read_share_file(tmp_path / "fma" / "share")
    assert info["group_public"] == share.group_public.hex() and info["transcript"] == share.transcript.hex()
    assert info["ceremony"] == "pilot-2026" and info["threshold"] == 2
    # nothing the operator keeps is a share, and the settings keep public material only
    store = open_store(db)
    escrow = store.meta().settings["privacy_public"]["escrow"]
    store.close()
    assert set(escrow) == {
        "scheme",
        "ledger_id",
        "group_public",
        "threshold",
        "holders",
        "ceremony",
        "transcript",
    }
    base = ["--case", "FMA-7", "--basis", "AML art. 13"]
    for h in ("fma", "central_bank"):
        r = run("--db", db, "privacy", "partial", "secret-pay", "--share", tmp_path / h / "share", *base,
                "--out", tmp_path / f"{h}.partial")  # fmt: skip
        assert r.exit_code == 0, r.output
    r = run("--db", db, "--json", "privacy", "unmask", "secret-pay", *base,
            "--partial", tmp_path / "fma.partial", "--partial", tmp_path / "central_bank.partial")  # fmt: skip
    assert r.exit_code == 0, r.output
    opened = json.loads(r.output)
    assert (opened["payer"], opened["payee"], opened["amount_tiyn"], opened["memo"]) == (
        "aigerim", "nurlan", 1234, "consulting")  # fmt: skip
    tracked = run("--db", db, "privacy", "tracker", "aigerim").output
    assert "fma+central_bank" in tracked and "opened" in tracked
    store = open_store(db)
    idx = max(i for i, t in store.traces() if t.op_id.startswith("access:"))
    store.close()
    r = run("--db", db, "privacy", "consents", f"#{idx}")
    assert r.exit_code == 0 and "signed by fma, central_bank (verified)" in r.output
    # one holder alone: refused and logged
    r = run("--db", db, "privacy", "unmask", "secret-pay", "--case", "X", "--basis", "b",
            "--share", tmp_path / "court" / "share")  # fmt: skip
    assert r.exit_code == 1 and "opening needs 2 of 3" in r.output


def test_cli_dkg__a_share_of_another_ceremony_or_a_dealt_ledger_is_refused(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    db = init_from_dealings(one, holders_generate(one))
    holders_generate(two)  # the same holders' names, another ceremony (same id even): other keys
    base = ["--case", "C", "--basis", "b"]
    r = run("--db", db, "privacy", "partial", "secret-pay", "--share", two / "fma" / "share", *base,
            "--out", tmp_path / "x.partial")  # fmt: skip
    assert (
        r.exit_code == 1 and "belongs to another ledger" in r.output and not (tmp_path / "x.partial").exists()
    )
    r = run("--db", db, "privacy", "unmask", "secret-pay", *base, "--share", two / "fma" / "share",
            "--share", two / "court" / "share")  # fmt: skip
    assert r.exit_code == 1 and "the share of fma belongs to another ledger" in r.output
    dealt = tmp_path / "dealt"
    dealt.mkdir()
    r = run("--db", dealt / "d.db", "init", "--name", "D", "--privacy", "escrowed",
            "--share-to", f"fma={dealt}/fma.share", "--share-to", f"court={dealt}/court.share")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("--db", db, "privacy", "unmask", "secret-pay", *base, "--share", dealt / "fma.share",
            "--share", dealt / "court.share")  # fmt: skip
    assert r.exit_code == 1 and "belongs to another ledger" in r.output
    r = run("--db", dealt / "d.db", "privacy", "partial", "#1", "--share", one / "fma" / "share", *base,
            "--out", tmp_path / "y.partial")  # fmt: skip
    assert r.exit_code == 1 and "belongs to another ledger" in r.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["escrow", "keygen", "Bad!", "--out", "x.identity"], "not a holder name"),
        (["escrow", "keygen", "fma", "--out", "exists"], "refusing to overwrite"),
        (["escrow", "deal", "--identity", "exists", "--ceremony", "c", "--holder", "exists", "--out", "d"],
         "not an escrow holder's identity file"),
        (["escrow", "deal", "--identity", "fma.identity", "--ceremony", "c", "--holder", "fma.identity",
          "--out", "d"], "private identity file: give its public card"),
        (["escrow", "deal", "--identity", "fma.identity", "--ceremony", "bad id!", "--holder", "fma.card",
          "--out", "d"], "not a ceremony id"),
        (["escrow", "deal", "--identity", "fma.identity", "--ceremony", "c", "--threshold", "2",
          "--holder", "fma.card", "--out", "d"], "threshold of 2 out of 1"),
        (["escrow", "finish", "--identity", "fma.identity", "--dealing", "fma.card", "--out", "s",
          "--acceptance-out", "a.ok"], "not an escrow dealing"),
        (["escrow", "finish", "--identity", "fma.identity", "--dealing", "missing", "--out", "s",
          "--acceptance-out", "a.ok"], "no such dealing"),
        (["init", "--name", "E", "--privacy", "escrowed", "--escrow-dealing", "fma.card"], "not an escrow dealing"),
        (["init", "--name", "E", "--privacy", "tiered", "--escrow-dealing", "fma.card"], "are for --privacy escrowed"),
    ],
)  # fmt: skip
def test_cli_dkg__mistakes_are_one_line_errors(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists").write_text("{}")
    assert run("escrow", "keygen", "fma", "--out", "fma.identity", "--public-out", "fma.card").exit_code == 0
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and says in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert (
        not (tmp_path / "tenge.db").exists()
        and not (tmp_path / "d").exists()
        and not (tmp_path / "s").exists()
    )


# ---- readers make their own keys --------------------------------------------------------------------------------


def reader_keys(tmp_path: Path, *holders: str) -> dict[str, tuple[Path, Path]]:
    out = {}
    for h in holders:
        private, public = tmp_path / f"{h.replace(':', '-')}.key", tmp_path / f"{h.replace(':', '-')}.pub"
        r = run("privacy", "keygen", "--holder", h, "--out", private, "--public-out", public)
        assert r.exit_code == 0, r.output
        assert private.stat().st_mode & 0o777 == 0o600
        out[h] = (private, public)
    return out


def test_cli_readers_own_keys__each_opens_what_it_should_and_the_operator_holds_none(tmp_path, monkeypatch):
    from test_privacy_custody import opens, secrets_in

    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    keys = reader_keys(tmp_path, "central_bank", "fma", "bank:halyk", "bank:jusan")
    db = str(tmp_path / "t.db")

    def ok(*args):
        r = run("--db", db, "--json", *args)
        assert r.exit_code == 0, (args, r.output)
        return json.loads(r.output) if r.output.strip() else None

    ok("init", "--name", "T", "--privacy", "tiered", "--key-from", f"central_bank={keys['central_bank'][1]}",
       "--key-from", f"fma={keys['fma'][1]}")  # fmt: skip
    ok("account", "open", "halyk", "--kind", "bank", "--key-from", keys["bank:halyk"][1])
    for who, bank in (("aigerim", "halyk"), ("nurlan", "halyk")):
        ok("account", "open", who, "--kind", "person", "--tier", "3", "--bank", bank)
    ok("account", "open", "roads", "--kind", "government")  # no commercial bank: the central bank serves it
    ok("issue", "aigerim", "1000000")
    ok("issue", "roads", "1000")
    ok("transfer", "aigerim", "nurlan", "5", "--id", "small")
    ok("transfer", "aigerim", "nurlan", "50000", "--id", "big")
    ok("transfer", "roads", "nurlan", "3", "--id", "from-roads")

    def field(role: str, key: Path | None, op: str, name: str = "payer") -> dict:
        views = ok("trace", "view", "--as", role, *(["--key", key] if key else []))
        return next(v for v in views if v["op_id"] == op)["fields"][name]

    assert field("bank:halyk", keys["bank:halyk"][0], "small") == {"level": "clear", "value": "aigerim"}
    assert field("bank:halyk", None, "small")["level"] == "none"
    assert field("fma", keys["fma"][0], "big") == {"level": "clear", "value": "aigerim"}
    # the central bank is the roads ministry's bank: its self-made file gets the pseudonym root the ledger keeps
    # sealed to it
    assert field("central_bank", keys["central_bank"][0], "from-roads") == {
        "level": "clear",
        "value": "roads",
    }
    assert field("central_bank", keys["central_bank"][0], "small")["level"] != "clear"
    public = _public(db)
    party = read_party_file(keys["central_bank"][0], public["ledger_id"], public)
    assert party.pseudonym_root is not None and party.ledger_id == public["ledger_id"]
    with pytest.raises(InputError, match="does not open"):  # the sealed root is bound to its ledger
        read_party_file(keys["central_bank"][0], "ab" * 16, public)
    r = run("--db", db, "privacy", "bank-key", "halyk", "--key-from", keys["bank:jusan"][1])
    assert r.exit_code == 1 and "has a key already" in r.output
    r = run("--db", db, "account", "open", "jusan", "--kind", "bank", "--key-from", keys["bank:halyk"][1])
    assert r.exit_code == 1 and "the key of 'bank:halyk', not of bank:jusan" in r.output
    assert run("--db", db, "account", "show", "jusan").exit_code == 1  # refused before the account was opened
    # the operator's files: no reader's private key, and together they open nothing sealed
    material = b"".join(p.read_bytes() for p in operator_files(db))
    for private, _ in keys.values():
        secret = json.loads(private.read_text())["box_key"]
        assert secret.encode() not in material
    candidates = secrets_in(operator_files(db))
    store = open_store(db)
    ledger_id = store.meta().ledger_id
    docs = [parse_payload(t.payload) for _, t in store.traces()]
    store.close()
    sealed = [
        d for d in docs if d.get("type") == "op" and any(d.get(f) for f in ("payer_sealed", "fma_ident"))
    ]
    assert len(sealed) >= 3
    assert [
        (d["op_id"], opens(d, ledger_id, candidates)) for d in sealed if opens(d, ledger_id, candidates)
    ] == []
    fma_key = bytes(PartyKey.from_json(json.loads(keys["fma"][0].read_text()), "fma").box_key)
    assert any(opens(d, ledger_id, {fma_key}) for d in sealed)  # the attack does see a key that opens


def _public(db: str) -> dict:
    store = open_store(db)
    try:
        return store.meta().settings["privacy_public"]
    finally:
        store.close()


def test_cli_readers_own_keys__refused_on_another_ledger_and_given_only_as_public_halves(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    keys = reader_keys(tmp_path, "central_bank", "fma")
    (tmp_path / "elsewhere").mkdir()
    other = reader_keys(tmp_path / "elsewhere", "fma")
    db = str(tmp_path / "t.db")
    cb, fma = keys["central_bank"], keys["fma"]
    r = run("--db", db, "init", "--name", "T", "--privacy", "tiered", "--key-from", f"central_bank={cb[0]}",
            "--key-from", f"fma={fma[1]}")  # fmt: skip
    assert r.exit_code == 1 and "private key file: give the operator its public half" in r.output
    assert not Path(db).exists()
    r = run("--db", db, "init", "--name", "T", "--privacy", "tiered", "--key-from", f"central_bank={fma[1]}",
            "--key-from", f"fma={fma[1]}")  # fmt: skip
    assert r.exit_code == 1 and "the key of 'fma', not of central_bank" in r.output
    r = run("--db", db, "init", "--name", "T", "--privacy", "tiered", "--key-from", f"central_bank={cb[1]}",
            "--key-to", f"fma={tmp_path}/fma-written.key")  # fmt: skip
    assert r.exit_code == 0, r.output  # one reader's own key, one written for it: both work
    r = run("--db", db, "trace", "view", "--as", "fma", "--key", other["fma"][0])
    assert r.exit_code == 1 and "not the one this ledger registered for fma" in r.output
    r = run("--db", db, "trace", "view", "--as", "fma", "--key", fma[0])  # made, but registered elsewhere
    assert r.exit_code == 1 and "not the one this ledger registered" in r.output
    r = run("--db", db, "trace", "view", "--as", "central_bank", "--key", cb[1])
    assert r.exit_code == 1 and "public half of a key" in r.output
    r = run("--db", db, "trace", "view", "--as", "central_bank", "--key", cb[0])
    assert r.exit_code == 0, r.output
    r = run("privacy", "keygen", "--holder", "court", "--out", tmp_path / "court.key")
    assert r.exit_code == 1 and "is no reader" in r.output and not (tmp_path / "court.key").exists()


def test_readers_own_keys__a_bank_opened_without_a_key_registers_its_own(tmp_path):
    from tenge_ledger.core.records import AccountKind
    from tenge_ledger.lab import sandbox
    from tenge_ledger.privacy import register_bank_key
    from tenge_ledger.privacy.keys import keygen_party, public_json

    box = sandbox.make(tmp_path, "payee-transparent")
    for handle, kind, bank in (("b3", AccountKind.bank, None), ("dana", AccountKind.person, "b3")):
        box.keystore.create(handle)
        assert box.wallet.open_account(handle, kind, tier=3 if bank else None, bank=bank).succeeded
    assert box.wallet.issue("dana", 1_000_000).succeeded
    own = keygen_party("bank:b3")  # on the bank's machine
    private, public = tmp_path / "b3.key", tmp_path / "b3.pub"
    private.write_text(json.dumps(own.to_json()))
    private.chmod(0o600)
    public.write_text(json.dumps(public_json(own)))
    with pytest.raises(InputError, match="private key file"):
        register_bank_key(box.store, "b3", None, box.db + ".keys", private)
    done = register_bank_key(box.store, "b3", None, box.db + ".keys", public)
    assert done["box_public"] == own.box_public_hex
    for i in range(sandbox_recheck() + 1):
        box.pay("dana", "bob", 500, f"p-{i}")
    seen = [
        v for v in operator.view(box.store, "bank:b3", (str(private),)) if v.op_id == f"p-{sandbox_recheck()}"
    ]
    assert seen[0].fields["payer"].value == "dana"
    assert bytes(own.box_key).hex().encode() not in b"".join(p.read_bytes() for p in operator_files(box.db))


def sandbox_recheck() -> int:
    from tenge_ledger.privacy.modes.base import unregistered_recheck_records

    return unregistered_recheck_records


def test_cli_dkg__init_with_acceptances_needs_every_holders_for_exactly_these_dealings(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    dealings = holders_generate(one)
    holders_generate(two)
    db = str(tmp_path / "e.db")
    base = ["--db", db, "init", "--name", "E", "--privacy", "escrowed",
            *[a for d in dealings for a in ("--escrow-dealing", d)]]  # fmt: skip
    cases = [
        ([one / "fma.ok", one / "court.ok"], "no acceptance from central_bank"),
        ([one / "fma.ok", one / "court.ok", two / "central_bank.ok"], "central_bank accepted another escrow"),
        (
            [one / "fma.ok", one / "court.ok", one / "court.ok", one / "central_bank.ok"],
            "court accepted twice",
        ),
        ([one / "fma.ok", one / "court.ok", one / "fma.dealing"], "not an escrow acceptance"),
    ]
    for files, says in cases:
        r = CliRunner().invoke(cli, [*base, *[a for f in files for a in ("--escrow-acceptance", str(f))]])
        assert r.exit_code == 1 and says in r.output, (says, r.output)
        assert "Traceback" not in r.output and not Path(db).exists()
    forged = json.loads((one / "court.ok").read_text())
    forged["holder"] = "fma"  # the court's signature under the FMA's name
    (tmp_path / "forged.ok").write_text(json.dumps(forged))
    r = CliRunner().invoke(cli, [*base, "--escrow-acceptance", str(tmp_path / "forged.ok")])
    assert r.exit_code == 1 and ("fma accepted another escrow" in r.output or "not signed by fma" in r.output)
    files = [one / "fma.ok", one / "court.ok", one / "central_bank.ok"]
    r = CliRunner().invoke(cli, [*base, *[a for f in files for a in ("--escrow-acceptance", str(f))]])
    assert r.exit_code == 0, r.output


def test_dkg__a_holder_a_dealer_wronged_cannot_accept__so_init_with_acceptances_refuses(tmp_path):
    identities, ceremony = ceremony_of(3, 2)
    fma, court, cb = identities
    dealings = [dkg.deal(fma, ceremony), deal_wrongly(court, ceremony, to=1, extra=5), dkg.deal(cb, ceremony)]
    paths = []
    for i, d in enumerate(dealings):
        dkg.write_dealing(tmp_path / f"{i}.dealing", d)
        paths.append(str(tmp_path / f"{i}.dealing"))
    with pytest.raises(InputError, match="does not match court's commitments"):
        dkg.finish(fma, dealings)
    for ident in (court, cb):  # the other two finish and accept
        dkg.write_acceptance(
            tmp_path / f"{ident.holder}.ok", dkg.acceptance(ident, dkg.finish(ident, dealings))
        )
    from tenge_ledger.privacy import EscrowDealings

    with pytest.raises(InputError, match="needs every holder's acceptance"):  # the operator alone cannot tell
        EscrowDealings.read(paths, None)
    with pytest.raises(InputError, match="no acceptance from fma"):
        EscrowDealings.read(paths, None, [str(tmp_path / "court.ok"), str(tmp_path / "central_bank.ok")])


def test_dkg__finish_takes_its_ceremony_from_its_own_signed_dealing_not_one_in_its_name():
    """Someone deals in the FMA's name for a ceremony of their making (the FMA's card is public): the FMA's finish
    does not take that ceremony for its own, and refuses the forgery."""
    identities, ceremony = ceremony_of(3, 2)
    fma, court, cb = identities
    good = [dkg.deal(i, ceremony) for i in identities]
    mallory = dkg.keygen("mallory")
    theirs = dkg.make_ceremony("pilot-2026", 2, [fma.card(), court.card(), mallory.card()])
    forged = replace(dkg.deal(mallory, theirs), dealer="fma", dealer_index=1)
    with pytest.raises(InputError, match="the dealing of fma names other holders|fma dealt twice"):
        dkg.finish(fma, [forged, *good])
