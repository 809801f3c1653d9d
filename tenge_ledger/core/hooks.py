"""The two hooks of the apply path, as protocols: the policy engine decides, the trace sink keeps.

The ledger service calls them; their implementations live in `policy` and `privacy` and are handed to the
service when it is built, so neither the service nor they reach around each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .records import Account, Decision, HoldRecord, Operation, Posting, TraceRecord


class LedgerView(Protocol):
    """What a policy may read, as of the moment the operation is applied (including earlier operations of the
    same batch)."""

    def account(self, handle: str) -> Account | None: ...

    def bucket(self, handle: str, tag: str) -> int: ...

    def account_total(self, handle: str) -> int: ...

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        """(sum of tiyn, count of postings) of the account's outgoing ("out") or incoming ("in") postings at or
        after ledger time `since`; `tag` limits it to one bucket ("" untagged); `counterparty`, the key of a
        filtered aggregate the enabled set declares (policy/check.py window_filter, its tag included), to the
        postings whose counterparty matched that filter."""
        ...


class Proposal(NamedTuple):
    """What the ledger would do without policies: the operation, its ledger time and its postings (a named
    tuple: immutable, and made for every payment a policy set is asked about).

    Parties by kind: a payment's and a seizure's are the operation's; a post's or void's are the hold's (the
    amount is what it posts or returns); an operation on one account (open_account, freeze) has that account as
    both payer and payee (and, for open_account, the account it would open as both accounts); a sweep has none
    (payer, payee and amount are None)."""

    op: Operation
    at: int
    payer: str | None
    payee: str | None
    amount_tiyn: int | None
    tag: str  # "" untagged
    postings: tuple[Posting, ...]
    # The parties' accounts as the ledger read them, when it did; a policy engine reads them from the view if not.
    payer_account: Account | None = None
    payee_account: Account | None = None
    hold: HoldRecord | None = None  # the hold a post or void settles


class PolicyEngine(Protocol):
    policy_set_id: str | None
    version: int | None  # the enabled set's version, chained into each journal row it decided
    # What the ledger reads ahead for the set: the history windows its rules read, and the counterparty filters
    # whose running flows it keeps (empty for no set); and whether any window, tagged or not, reads the
    # unfiltered running flows, whose per-minute snapshots (`activity`) the ledger keeps only while one does.
    windows: frozenset
    filters: frozenset[str]
    activity: bool

    def decide(self, proposal: Proposal, view: LedgerView) -> Decision: ...


@dataclass(frozen=True, slots=True)
class EncodedTrace:
    """A trace record as a sink keeps it: `payload` is what is stored (clear, pseudonymised or sealed),
    `mode` names the privacy mode, `account_keys` lists the pseudonymous keys an account's tracker uses."""

    op_id: str
    at: int
    mode: str
    payload: bytes
    leaf_hash: bytes  # RFC 6962 leaf hash of the payload, the trace log's Merkle leaf


class TraceSink(Protocol):
    mode: str
    # True when an applied operation's Merkle leaf is derived from its journal row (trace/journal_leaf.py): the
    # service then hands the sink nothing for it and the log keeps only the row's seq.
    journal_leaves: bool

    def encode(self, record: TraceRecord) -> EncodedTrace: ...
