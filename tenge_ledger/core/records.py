"""Domain records: small immutable values, field by field. The ledger's nouns, all in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class AccountKind(StrEnum):
    central_bank = "central_bank"
    bank = "bank"
    government = "government"
    person = "person"
    merchant = "merchant"
    miner = "miner"
    exchange = "exchange"
    agency = "agency"  # e.g. the financial monitoring agency, a court, a tax authority
    system = "system"  # accounts the ledger itself keeps, such as the escrow that holds pending money


# The accounts the ledger itself runs: the central bank's and the holds account. Nobody opens, pays, issues to,
# seizes from, freezes or closes one like a user's, and the built-in checks of postings skip them.
LEDGER_KINDS = frozenset({AccountKind.central_bank, AccountKind.system})

# Kinds served by a commercial bank in the two-tier distribution model.
KINDS_SERVED_BY_BANK = frozenset({AccountKind.person, AccountKind.merchant})


class AccountStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    closed = "closed"


HOLDS_ACCOUNT = "@holds"  # the system account where pending (held) money sits; '@' cannot start a user handle


@dataclass(frozen=True, slots=True)
class Account:
    handle: str  # unique, chosen by whoever opens it; the distribution key when sharded
    kind: AccountKind
    public_key: str  # Ed25519 verify key, hex; the ledger never sees secret keys
    tier: int | None = None  # wallet tier; None means no tier limits apply
    bank: str | None = None  # handle of the commercial bank serving a person or merchant
    attrs: tuple[tuple[str, str], ...] = ()  # free attributes (zone, licences, ...), sorted by key
    status: AccountStatus = AccountStatus.active
    opened_at: int = 0  # ledger time, unix seconds

    def attr(self, key: str) -> str | None:
        for k, v in self.attrs:
            if k == key:
                return v
        return None

    def attrs_dict(self) -> dict[str, str]:
        return dict(self.attrs)


# ---- Operations: a signed intent is an Operation; its body says what it does. --------------------------------


class OpKind(StrEnum):
    open_account = "open_account"
    update_account = "update_account"
    issue = "issue"
    redeem = "redeem"
    transfer = "transfer"
    hold = "hold"
    post = "post"
    void = "void"
    sweep = "sweep"
    batch = "batch"
    freeze = "freeze"
    unfreeze = "unfreeze"
    close = "close"
    seize = "seize"
    add_witness = "add_witness"


# The operations the ledger asks its policy set about: this is their one place (the checker, the engine, the
# service and `policy explain` all read it). A rule without `on` sees the payments; the lifecycle kinds are seen
# only by rules that name them.
PAYMENT_KINDS: tuple[OpKind, ...] = (OpKind.issue, OpKind.redeem, OpKind.transfer, OpKind.hold)
LIFECYCLE_KINDS: tuple[OpKind, ...] = (
    OpKind.seize, OpKind.post, OpKind.void, OpKind.sweep, OpKind.freeze, OpKind.open_account,
)  # fmt: skip
DECIDED_KINDS: tuple[OpKind, ...] = PAYMENT_KINDS + LIFECYCLE_KINDS

# What a sweep does with a hold nobody posted or voided in time: "void" returns the money to the payer (every
# hold before issue 13), "post" pays it to the payee (a provisional seizure becoming final).
HOLD_ON_TIMEOUT = ("void", "post")
HOLD_ON_TIMEOUT_DEFAULT = "void"


@dataclass(frozen=True, slots=True)
class OpenAccount:
    handle: str
    account_kind: AccountKind
    public_key: str
    tier: int | None = None
    bank: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateAccount:
    """Sets the tier and merges attributes (a value of "" removes the key)."""

    handle: str
    tier: int | None = None
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Issue:
    """Central bank creates money into an account. The only way supply grows."""

    payee: str
    amount_tiyn: int
    tag: str | None = None
    expires_on: str | None = None  # ISO date; tagged money returns to the central bank on that day
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class Redeem:
    """Money leaves circulation: the payer (usually a commercial bank) returns it to the central bank."""

    payer: str
    amount_tiyn: int
    tag: str | None = None
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    payer: str
    payee: str
    amount_tiyn: int
    tag: str | None = None  # the bucket drawn from; None is untagged money
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """A pending transfer: the money leaves the payer now and reaches the payee only when posted."""

    payer: str
    payee: str
    amount_tiyn: int
    timeout_s: int  # after this many seconds a sweep returns the money to the payer
    tag: str | None = None
    releaser: str | None = None  # who may post or void it; None means the payer
    memo: str | None = None
    # "post" or "void" at the timeout; None is "void". Left out of the canonical bytes when None, so signatures
    # made before the field existed still verify.
    on_timeout: str | None = None


@dataclass(frozen=True, slots=True)
class Post:
    hold_id: str
    amount_tiyn: int | None = None  # None posts the whole held amount; less posts partly, the rest goes back


@dataclass(frozen=True, slots=True)
class Void:
    hold_id: str


@dataclass(frozen=True, slots=True)
class Sweep:
    """Runs the ledger's clock-driven work as of a given ledger time: expired tags, timed-out holds."""

    as_of: int  # ledger time, unix seconds


@dataclass(frozen=True, slots=True)
class Freeze:
    account: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Unfreeze:
    account: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Close:
    account: str


@dataclass(frozen=True, slots=True)
class Seize:
    """A court-ordered debit: works on frozen accounts; the money goes to the named payee."""

    payer: str
    payee: str
    amount_tiyn: int
    tag: str | None = None
    order: str | None = None  # the court order's reference


@dataclass(frozen=True, slots=True)
class AddWitness:
    """The central bank registers an independent witness whose cosignatures its checkpoints accept. Journaled,
    so the registry is part of the history witnesses themselves cosign."""

    name: str  # the witness's key name in signed notes
    public_key: str  # Ed25519, hex


@dataclass(frozen=True, slots=True)
class Batch:
    """Operations applied all or nothing, in order, each seeing the effects of those before it."""

    operations: tuple[Operation, ...]


Body = (
    OpenAccount
    | UpdateAccount
    | Issue
    | Redeem
    | Transfer
    | Hold
    | Post
    | Void
    | Sweep
    | Batch
    | Freeze
    | Unfreeze
    | Close
    | Seize
    | AddWitness
)

BODY_BY_KIND: dict[OpKind, type] = {
    OpKind.open_account: OpenAccount,
    OpKind.update_account: UpdateAccount,
    OpKind.issue: Issue,
    OpKind.redeem: Redeem,
    OpKind.transfer: Transfer,
    OpKind.hold: Hold,
    OpKind.post: Post,
    OpKind.void: Void,
    OpKind.sweep: Sweep,
    OpKind.batch: Batch,
    OpKind.freeze: Freeze,
    OpKind.unfreeze: Unfreeze,
    OpKind.close: Close,
    OpKind.seize: Seize,
    OpKind.add_witness: AddWitness,
}
KIND_BY_BODY: dict[type, OpKind] = {v: k for k, v in BODY_BY_KIND.items()}

# Operations only the central bank may sign.
CENTRAL_BANK_KINDS = frozenset(
    {
        OpKind.open_account,
        OpKind.update_account,
        OpKind.issue,
        OpKind.redeem,
        OpKind.sweep,
        OpKind.freeze,
        OpKind.unfreeze,
        OpKind.close,
        OpKind.seize,
        OpKind.add_witness,
    }
)


@dataclass(frozen=True, slots=True)
class Operation:
    """A signed intent. `id` is chosen by the client: the same id is applied at most once."""

    id: str
    signer: str  # handle of the account whose key signed
    body: Body
    signature: str = ""  # Ed25519 over canonical_bytes(ledger_id, op), hex

    @property
    def kind(self) -> OpKind:
        return KIND_BY_BODY[type(self.body)]


# ---- What applying produces -----------------------------------------------------------------------------------


class Posting(NamedTuple):
    """One leg of double entry: a signed change of one account's bucket. An operation's postings sum to zero.
    A named tuple, immutable like a frozen dataclass at a sixth of its construction cost: every payment makes
    two or more."""

    account: str
    amount_tiyn: int  # negative debits the account, positive credits it
    tag: str = ""  # "" is untagged money


@dataclass(frozen=True, slots=True)
class Report:
    """A record filed for an agency (e.g. the financial monitoring agency) by a policy rule."""

    agency: str
    reason: str
    rule: str


@dataclass(frozen=True, slots=True)
class HoldRecord:
    hold_id: str  # the id of the hold operation
    payer: str
    payee: str
    amount_tiyn: int
    tag: str
    releaser: str
    deadline: int  # ledger time, unix seconds
    status: str = "pending"  # pending | posted | voided | expired
    on_timeout: str = HOLD_ON_TIMEOUT_DEFAULT  # what a sweep does at the deadline: "void" or "post"


@dataclass(frozen=True, slots=True)
class TagRecord:
    tag: str
    expires_on: str | None  # ISO date or None
    created_at: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy engine's answer. Deny overrides everything; an allow may reshape the postings."""

    allowed: bool = True
    reasons: tuple[str, ...] = ()  # why it was denied, or notes on what rules did
    rules: tuple[str, ...] = ()  # the rules that decided (matched and had an effect)
    postings: tuple[Posting, ...] | None = (
        None  # replacement postings (splits, routes, tag changes); None keeps
    )
    hold_timeout_s: int | None = None  # turn a transfer into a hold with this timeout
    hold_releaser: str | None = None
    reports: tuple[Report, ...] = ()
    policy_set_id: str | None = None  # hash of the policy set that decided
    detail: dict[str, Any] = field(default_factory=dict)  # for explain: matched rules and their messages
    hold_on_timeout: str | None = None  # "post" or "void" at the hold's timeout; None keeps the default


ALLOW = Decision()


def _bank_of(account: Account | None) -> str | None:
    return None if account is None else (account.bank or "")


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """What the trace hook receives for every applied or rejected operation. The sink decides what is kept."""

    op_id: str
    kind: str
    at: int
    code: str
    message: str
    signer: str
    payer: str | None
    payee: str | None
    amount_tiyn: int | None
    tag: str | None
    memo: str | None
    seq: int | None  # journal seq when applied
    postings: tuple[Posting, ...] = ()
    reports: tuple[Report, ...] = ()
    policy_set_id: str | None = None
    rules: tuple[str, ...] = ()
    # The parties' accounts as the ledger saw them when applying (None when unknown): an account opened earlier in
    # the chunk is not in the store yet; a mode takes a party's own key and its serving bank from here.
    payer_account: Account | None = None
    payee_account: Account | None = None

    @property
    def payer_bank(self) -> str | None:
        """The commercial bank serving the payer ("" when none does; None when the payer is unknown):
        pseudonymous modes key each party's pseudonym under its own bank's epoch key."""
        return _bank_of(self.payer_account)

    @property
    def payee_bank(self) -> str | None:
        return _bank_of(self.payee_account)
