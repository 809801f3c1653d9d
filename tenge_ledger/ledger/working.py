"""A working set: reads through to its parent, keeps its own changes, and merges them up only on success.

The root's parent is the store transaction; an operation runs in a child of the root, and each operation of a
batch in a child of the batch's. Throwing a child away is how a rejected operation leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..core import limits
from ..core.errors import LedgerStateError
from ..core.hooks import EncodedTrace
from ..core.records import HOLDS_ACCOUNT, Account, HoldRecord, OpKind, Posting, TagRecord
from ..core.windows import count_posting, counterparties, matches, party_of
from ..store.base import ChangeSet, ReportRow, StoreTx
from ..store.entries import link_deferred
from .state import StoredState

_NO_POSTINGS = (0, 0)  # a stored window without postings


class WorkingSet:
    # The counterparty filters the enabled policy set names, (key, counterparty pairs, tag or None), set on the
    # root per chunk, and whether one reads the zone (which an account may change). A set's postings that count
    # in them: (handle, key) -> the flows' change; made on first use, so the working sets of a ledger without
    # filters carry none of it.
    filters: tuple[tuple[str, tuple[tuple[str, str], ...], str | None], ...] = ()
    zone_filters = False
    filter_deltas: dict[tuple[str, str], list[int]] | None = None
    # Set on the root when a window was read while it works ahead of the store (`base_head`): the store's
    # history lacks the chunks a committer holds, so the chunk must be worked out again once they are written.
    read_history_ahead = False
    # Root only, set when a committer writes the chunk (ledger/service.py, pipelined): the plain loop leaves its
    # rows unlinked for the store to link as it writes them (ChangeSet.links_deferred), and a head it does not
    # know the link of is (seq, None). Reading the head (`head`) links them here instead, from then on, asking
    # `resolve_base` for the base's link when the committer holds it.
    links_deferred = False
    resolve_base: Callable[[], tuple[int, bytes]] | None = None
    # Root only, set when the ledger keeps no activity and its store takes bucket upserts (StoreTx): `changeset`
    # leaves the buckets' rows to the store's statements and keeps no stored rows.
    upsert_buckets = False
    # Root only, set with a committer: the chunk reads no operation ids from the store (a query per chunk) while
    # every operation is a plain transfer that succeeds, which the plain loop checks against the chunks the
    # committer holds alone. The journal's unique op_id refuses a repeated one as the committer writes it
    # (KnownOperationId), and the ledger then works the chunk out again reading them. An operation that goes the
    # general way may be rejected, which journals nothing for the store to refuse: its `operation` reads them.
    ids_unread = False
    _unread_ids: Iterable[str] = ()

    def __init__(
        self, parent: WorkingSet | None = None, tx: StoreTx | None = None, state: StoredState | None = None
    ) -> None:
        self.parent = parent
        # None on the root itself: a reference to itself would make every chunk's root a cycle, which only
        # the cycle collector frees (and a chunk's rows, keys and flows with it)
        self._root: WorkingSet | None = None if parent is None else parent.root
        self.tx = tx if tx is not None else parent.tx  # type: ignore[union-attr]
        self.accounts: dict[str, Account] = {}
        # (account, tag) -> [out, out count, in, in count] of this set's postings: the running flows' change, and
        # so the balance's (in less out)
        self.flow_deltas: dict[tuple[str, str], list[int]] = {}
        self.operations: dict[str, tuple[int, bytes]] = {}  # op id -> (seq, fields hash) applied here
        self.entries: list[tuple] = []  # compact journal rows (store/entries.py)
        self.plain_entries: list[tuple] = []  # root only: plain transfers' rows (PLAIN_JOURNAL_COLUMNS)
        self.legs: list[tuple] = []
        self.holds: dict[str, HoldRecord] = {}
        self.tags: dict[str, TagRecord] = {}
        self.witnesses: dict[str, str] = {}  # witnesses this set registered: name -> public key
        self._witness_cache: dict[str, str] | None = None  # root only: the store's registry
        self.issued_delta = 0
        self.redeemed_delta = 0
        self.head_value: tuple[int, bytes] | None = None
        # an int is the seq of a journal row whose trace leaf is derived from it (trace/journal_leaf.py)
        self.traces: list[EncodedTrace | int] = []
        self.reports: list[ReportRow] = []
        # The root keeps what it read from the store in `state` (the ledger's, kept between chunks), so rows are
        # read once; account and tag ids too (the journal keeps ids, not names), and the stored rows of buckets
        # with their running flows.
        self.state = state if state is not None else (StoredState() if parent is None else parent.root.state)
        self._account_cache = self.state.accounts
        self._bucket_cache = self.state.balances
        self._buckets_cache = self.state.account_buckets
        self._ids = self.state.ids
        self._bucket_rows = self.state.bucket_rows
        self._rows_read = self.state.rows_read
        self._operation_cache: dict[str, tuple[int, bytes] | None] = {}
        self._new_tags: list[tuple[int, str]] = []
        # The tags each account moved in this set: a policy's balance and window reads cost what the account
        # touched, not the whole chunk.
        self._tags_by_account: dict[str, set[str]] = {}
        # root only: stored windows, by (direction, since, filter key or None), then handle (one dict per window
        # rather than a key tuple per account: fewer objects kept alive for the chunk)
        self._window_cache: dict[tuple[str, int, str | None], dict[str, tuple[int, int]]] = {}
        # root only: the policy set's answer (a Decision or the exception it raised) for an operation the plain
        # path asked about and handed on, so the general path does not ask again (ledger/plain.py)
        self.decided: tuple[object, object] | None = None
        # root only: the journal head to chain on when the store's is behind (chunks a committer holds)
        self.base_head: tuple[int, bytes] | None = None

    @property
    def root(self) -> WorkingSet:
        return self._root or self  # the methods below spell it out: it runs per read

    def prefetch(self, handles: set[str], op_ids: set[str]) -> None:
        """Read what a chunk will touch in one query per table; the root's caches then answer the
        per-operation reads. A bucket without a row is 0 once its account's rows are read (`bucket` says so
        on the rare read of one: a payer with nothing in it); filling them in here cost a lookup per bucket
        in every chunk."""
        if self.parent is not None:
            raise ValueError("prefetch on the root working set only")
        tx = self.tx
        cache, rows_read = self._account_cache, self._rows_read
        # a comprehension, not `handles - cache.keys()`: a set less a dict view walks the whole dict
        unknown = [h for h in handles if h not in cache]
        if unknown:
            found = tx.accounts_with_ids(unknown)
            for handle in unknown:
                hit = found.get(handle)
                cache[handle] = None if hit is None else hit[1]
                if hit is not None:
                    self._ids[handle] = hit[0]
        # Every existing account's rows, including one an earlier chunk cached without them (a freeze reads the
        # account alone): a bucket without a row then holds 0, known only once all the account's rows are read.
        unread = handles - rows_read
        if unread:
            self._read_bucket_rows({a for a in unread if cache.get(a) is not None})
        if self.ids_unread:  # until an operation goes the general way (`operation`)
            self._unread_ids = op_ids
            return
        self._read_ids(op_ids)

    def _read_ids(self, op_ids: Iterable[str]) -> None:
        op_ids = [i for i in op_ids if i not in self._operation_cache]
        pending = self.state.pending_ops
        if pending:  # applied in a chunk the committer holds: the store does not have it yet
            self._operation_cache.update({i: pending[i] for i in op_ids if i in pending})
            op_ids = [i for i in op_ids if i not in pending]
        self._operation_cache.update(dict.fromkeys(op_ids))
        tx = self.tx
        for op_id, stored in tx.stored_operations(tx.entry_rows(op_ids)).items():
            self._operation_cache[op_id] = (stored.seq, stored.fields_hash)

    def _read_bucket_rows(self, handles: set[str]) -> None:
        """Every stored bucket of these accounts, with its flows: also answers their whole-account reads."""
        if not handles:
            return
        rows = self.tx.bucket_rows(handles)
        self._rows_read.update(handles)
        whole: dict[str, dict[str, int]] = {h: {} for h in handles}
        own = {h: h for h in handles}
        for (account, tag), row in rows.items():
            # keyed by the caller's own string, not the store's equal copy: a lookup with the keys the apply
            # loop makes from its operations then finds its entry by identity, and touches no second string
            account = own[account]
            mine = whole[account]
            key = (account, tag)
            self._bucket_rows[key] = row
            self._bucket_cache[key] = row.balance_tiyn
            if row.balance_tiyn and tag:
                mine[tag] = row.balance_tiyn
        self._buckets_cache.update(whole)

    def prefetch_windows(self, requests: dict[tuple[str, int, str | None], set[str]]) -> None:
        """Read the stored untagged or filtered history windows a chunk's policies will ask for, keyed
        (direction, since, filter key or None), in grouped queries."""
        fetch = self.tx.windows
        if self.parent is not None:
            return
        by_direction: dict[tuple[str, str | None], dict[int, set[str]]] = {}
        for (direction, since, key), handles in requests.items():
            by_direction.setdefault((direction, key), {})[since] = handles
        ids = self._ids
        for (direction, key), wanted in by_direction.items():
            sinces = tuple(sorted(wanted))
            handles = set().union(*wanted.values())
            unknown = {h for h in handles if h not in ids}
            if unknown:  # (prefetch read the chunk's accounts: only those the store does not have, mostly)
                ids.update(self.tx.account_ids(unknown))
            # an account the store does not have has no rows: each of its windows is empty (_NO_POSTINGS)
            found = fetch({ids[h]: h for h in handles if h in ids}, direction, sinces, key)
            for since, handles in wanted.items():
                cached = self._window_cache.setdefault((direction, since, key), {})
                for handle in handles:
                    cached[handle] = found.get((handle, since), _NO_POSTINGS)

    def child(self) -> WorkingSet:
        return WorkingSet(parent=self)

    # ---- reads ---------------------------------------------------------------------------------------------

    def account(self, handle: str) -> Account | None:
        ws: WorkingSet | None = self
        while ws is not None:
            found = ws.accounts.get(handle)
            if found is not None:
                return found
            if ws.parent is None:
                if handle not in ws._account_cache:
                    ws._account_cache[handle] = ws.tx.account(handle)
                return ws._account_cache[handle]
            ws = ws.parent
        return None  # pragma: no cover

    def bucket(self, handle: str, tag: str) -> int:
        key = (handle, tag)
        total = 0
        ws: WorkingSet | None = self
        while ws is not None:
            flow = ws.flow_deltas.get(key)
            if flow is not None:
                total += flow[2] - flow[0]
            if ws.parent is None:
                if key not in ws._bucket_cache:
                    ws._bucket_cache[key] = 0 if handle in ws._rows_read else ws.tx.bucket(handle, tag)
                total += ws._bucket_cache[key]
            ws = ws.parent
        return total

    def buckets(self, handle: str) -> dict[str, int]:
        tagged, untagged = self._stored_buckets(handle)
        out = dict(tagged)
        if untagged:
            out[""] = untagged
        for ws in self._chain():
            for tag in ws._tags_by_account.get(handle, ()):
                flow = ws.flow_deltas[(handle, tag)]
                out[tag] = out.get(tag, 0) + flow[2] - flow[0]
        return {t: b for t, b in out.items() if b}

    def _stored_buckets(self, handle: str) -> tuple[dict[str, int], int]:
        """The account's stored non-zero tagged buckets, and its stored untagged balance."""
        root = self._root or self
        stored = root._buckets_cache.get(handle)
        key = (handle, "")
        if stored is None:  # the store's rows do not change during the transaction: read them once per chunk
            stored = dict(self.tx.buckets(handle))
            untagged = stored.pop("", 0)
            root._buckets_cache[handle] = stored
            root._bucket_cache.setdefault(key, untagged)
        # an account whose buckets were read and that has no untagged row holds 0 untagged
        return stored, root._bucket_cache.get(key, 0)

    def account_total(self, handle: str) -> int:
        """sum(buckets(handle).values()), without building the dict: holding limits ask it of every credit."""
        tagged, untagged = self._stored_buckets(handle)
        total = untagged + sum(tagged.values())
        ws: WorkingSet | None = self
        while ws is not None:
            tags = ws._tags_by_account.get(handle)
            if tags:
                flows = ws.flow_deltas
                for tag in tags:
                    flow = flows[(handle, tag)]
                    total += flow[2] - flow[0]
            ws = ws.parent
        return total

    def operation(self, op_id: str) -> tuple[int, bytes] | None:
        """(seq, fields hash) of the applied operation with this id, if any."""
        ws = self
        while True:
            found = ws.operations.get(op_id)
            if found is not None:
                return found
            if ws.parent is None:
                break
            ws = ws.parent
        cache = ws._operation_cache  # the root's: what the store holds does not change under this transaction
        if ws.ids_unread:
            ws.ids_unread = False
            ws._read_ids(ws._unread_ids)
        if op_id not in cache:
            pending = ws.state.pending_ops.get(op_id)
            if pending is not None:
                cache[op_id] = pending
            else:
                stored = ws.tx.operation(op_id)
                cache[op_id] = None if stored is None else (stored.seq, stored.fields_hash)
        return cache[op_id]

    def hold(self, hold_id: str) -> HoldRecord | None:
        for ws in self._chain():
            found = ws.holds.get(hold_id)
            if found is not None:
                return found
        return self.tx.hold(hold_id)

    def holds_due(self, as_of: int) -> list[HoldRecord]:
        merged = {h.hold_id: h for h in self.tx.holds_due(as_of)}
        for ws in reversed(list(self._chain())):
            merged.update(ws.holds)
        due = [h for h in merged.values() if h.status == "pending" and h.deadline <= as_of]
        return sorted(due, key=lambda h: (h.deadline, h.hold_id))

    def pending_holds(self, payer: str) -> list[HoldRecord]:
        """The pending holds of money `payer` paid in, as of this set."""
        merged = {h.hold_id: h for h in self.tx.pending_holds(payer)}
        for ws in reversed(list(self._chain())):
            merged.update(ws.holds)
        pending = [h for h in merged.values() if h.status == "pending" and h.payer == payer]
        return sorted(pending, key=lambda h: (h.deadline, h.hold_id))

    def witness_registry(self) -> dict[str, str]:
        """Registered witnesses as of this set: the store's (derived from the journal) and this chunk's."""
        root = self._root or self
        if root._witness_cache is None:
            root._witness_cache = dict(root.tx.witness_registrations())
        out = dict(root._witness_cache)
        for ws in reversed(list(self._chain())):
            out.update(ws.witnesses)
        return out

    def tag(self, tag: str) -> TagRecord | None:
        for ws in self._chain():
            found = ws.tags.get(tag)
            if found is not None:
                return found
        return self.tx.tag(tag)

    def tags_expiring(self, as_of_date: str) -> list[TagRecord]:
        merged = {t.tag: t for t in self.tx.tags_expiring(as_of_date)}
        for ws in self._chain():
            for t in ws.tags.values():
                if t.expires_on is not None and t.expires_on <= as_of_date:
                    merged[t.tag] = t
        return sorted(merged.values(), key=lambda t: t.tag)

    def tag_holders(self, tag: str) -> dict[str, int]:
        out = dict(self.tx.tag_holders(tag))
        for ws in self._chain():
            for (acct, t), flow in ws.flow_deltas.items():
                if t == tag:
                    out[acct] = out.get(acct, 0) + flow[2] - flow[0]
        return {a: b for a, b in sorted(out.items()) if b}

    def head(self) -> tuple[int, bytes]:
        if self._root is None and self.head_value is not None and not self.links_deferred:
            return self.head_value  # the root, once it journaled and linked: most asks
        root = self._root or self
        # whoever asks journals next, chaining on a link: rows left unlinked get theirs
        if root.links_deferred:
            return root._link_deferred()
        for ws in self._chain():
            if ws.head_value is not None:
                return ws.head_value
        return self.tx.head() if root.base_head is None else root.base_head

    def tip(self) -> tuple[int, bytes | None]:
        """The root's head without linking what it left unlinked: (seq, None) when it did."""
        if self.head_value is not None:
            return self.head_value
        return self.tx.head() if self.base_head is None else self.base_head

    def _link_deferred(self) -> tuple[int, bytes]:
        """Link the rows the plain loop left unlinked, on the base's link, and link every row from now on: a
        row the general path journals chains on its link. While rows are left unlinked, no working set has
        journaled another way (it asks `head` first), so the root's head is (seq, None) or its base's."""
        base = self.base_head if self.base_head is not None else self.tx.head()
        if base[1] is None:
            if self.resolve_base is None:
                raise LedgerStateError("a journal head without its link, and no committer to ask for it")
            found = self.resolve_base()
            if found[0] != base[0]:
                raise LedgerStateError(f"the committer left the journal at #{found[0]}, not #{base[0]}")
            base = self.base_head = found
        self.links_deferred = False
        if not (self.entries or self.plain_entries):
            return base
        # in place: the plain loop holds these lists
        self.entries[:], self.plain_entries[:], head = link_deferred(base, self.entries, self.plain_entries)
        self.head_value = head
        return head

    def window(
        self, handle: str, direction: str, since: int, tag: str | None = None, counterparty: str | None = None
    ) -> tuple[int, int]:
        """The stored window plus this chunk's flows. Every posting of a chunk has the chunk's time and a
        window starts at or before it, so each posting of the chunk is inside every window: its running flows
        are all a window needs of it."""
        root = self._root or self
        if root.base_head is not None:
            root.read_history_ahead = True
        cached = root._window_cache.get((direction, since, counterparty)) if tag is None else None
        stored = None if cached is None else cached.get(handle)
        if stored is not None:
            total, count = stored
        elif counterparty is None:
            total, count = self.tx.window(handle, direction, since, tag)
        else:
            total, count = self.tx.window(handle, direction, since, None, counterparty)
        i = 0 if direction == "out" else 2
        ws: WorkingSet | None = self
        while ws is not None:
            # the flows this set moved that the window reads: one filter's, one bucket's, or every bucket's
            if counterparty is not None:
                flows, keys = ws.filter_deltas or {}, (counterparty,)
            else:
                flows, keys = (
                    ws.flow_deltas,
                    (tag,) if tag is not None else ws._tags_by_account.get(handle, ()),
                )
            for k in keys:
                flow = flows.get((handle, k))
                if flow is not None:
                    total += flow[i]
                    count += flow[i + 1]
            ws = ws.parent
        return total, count

    def account_id(self, handle: str) -> int:
        """The account's id: the store's, or a new one for an account opened in this chunk."""
        root = self._root or self
        found = root._ids.get(handle)
        if found is None:
            found = root.tx.account_ids([handle]).get(handle)
            if found is None:
                found = root._allocate(0)
            root._ids[handle] = found
        return found

    def tag_id(self, tag: str) -> int:
        root = self._root or self
        state = root.state
        if state.tag_ids is None:
            state.tag_ids = root.tx.tag_ids()
        found = state.tag_ids.get(tag)
        if found is None:
            found = state.tag_ids[tag] = root._allocate(1)
            root._new_tags.append((found, tag))
        return found

    def _allocate(self, which: int) -> int:
        state = self.state
        if state.next_ids is None:
            state.next_ids = list(self.tx.next_ids())
        found = state.next_ids[which]
        state.next_ids[which] += 1
        return found

    def _chain(self):
        ws: WorkingSet | None = self
        while ws is not None:
            yield ws
            ws = ws.parent

    # ---- writes --------------------------------------------------------------------------------------------

    def add_legs(self, legs: Iterable[tuple[str, int, str]]) -> None:
        """Move the buckets of an operation's legs, (account, amount, tag): balances and running flows."""
        flows, tags_of = self.flow_deltas, self._tags_by_account
        for handle, delta, tag in legs:
            key = (handle, tag)
            held = tags_of.get(handle)
            if held is None:
                tags_of[handle] = {tag}
            else:
                held.add(tag)
            flow = flows.get(key)
            if flow is None:
                flow = flows[key] = [0, 0, 0, 0]
            count_posting(flow, delta)

    def add_filtered(
        self, kind: OpKind, body: object, postings: tuple[Posting, ...], central_bank: str
    ) -> None:
        """Count an applied operation's postings in the filtered flows their counterparty (as it is now, when
        the operation applies) matches; core/windows.py FilterReplay does the same from the journal."""
        pair = counterparties(kind, getattr(body, "payer", None), getattr(body, "payee", None), central_bank)
        if pair is None:
            return
        # the filters each party matches, but for the tag (a posting's own): most payments match none
        of_payer, of_payee = self._matching(pair[0]), self._matching(pair[1])
        if not of_payer and not of_payee:
            return
        if self.filter_deltas is None:
            self.filter_deltas = {}
        deltas = self.filter_deltas
        for p in postings:
            if p.account == HOLDS_ACCOUNT:
                continue
            for key, tag in of_payee if p.account == pair[0] else of_payer:
                if tag is not None and tag != p.tag:
                    continue
                amount = p.amount_tiyn
                flow = deltas.get((p.account, key))
                if flow is None:
                    flow = deltas[(p.account, key)] = [0, 0, 0, 0]
                count_posting(flow, amount)

    def filters_met(self) -> dict[str, tuple[Account, list[tuple[str, str | None]]]] | None:
        """`_matching`'s answers so far, by handle (the account as it was asked, and the filters it meets), where
        each stands without a look at the account: no filter tests a zone, which a chunk may change. None where
        they may not, or none were worked out for this set's filters."""
        root = self._root or self
        state = self.state
        if not root.filters or root.zone_filters or state.matched_for is not root.filters:
            return None
        return state.matched

    def _matching(self, handle: str) -> list[tuple[str, str | None]]:
        """The filters whose counterparty conditions `handle` meets, each with its tag (None: any) to test."""
        root = self._root or self
        state, filters = self.state, root.filters
        if state.matched_for is not filters:
            state.matched_for, state.matched = filters, {}
        found = state.matched.get(handle)
        if found is not None and (not root.zone_filters or self.account(handle) is found[0]):
            return found[1]
        account = self.account(handle)
        if account is None:
            return []
        kind, bank, zone = party_of(account)
        matched = [(key, tag) for key, pairs, tag in filters if matches(pairs, kind, bank, zone, "")]
        if self.parent is None or account is root.account(handle):  # not a change a child may throw away
            state.matched[handle] = (account, matched)
        return matched

    def merge_into_parent(self) -> None:
        p = self.parent
        assert p is not None
        if self.filter_deltas is not None:
            self._merge_filtered(p)
        p.accounts.update(self.accounts)
        for key, flow in self.flow_deltas.items():
            mine = p.flow_deltas.get(key)
            if mine is None:
                p.flow_deltas[key] = list(flow)
            else:
                for i in range(4):
                    mine[i] += flow[i]
            p._tags_by_account.setdefault(key[0], set()).add(key[1])
        p.operations.update(self.operations)
        p.entries.extend(self.entries)
        p.legs.extend(self.legs)
        p.holds.update(self.holds)
        p.tags.update(self.tags)
        p.witnesses.update(self.witnesses)
        p.issued_delta += self.issued_delta
        p.redeemed_delta += self.redeemed_delta
        if self.head_value is not None:
            p.head_value = self.head_value
        p.traces.extend(self.traces)
        p.reports.extend(self.reports)

    def _merge_filtered(self, p: WorkingSet) -> None:
        if p.filter_deltas is None:
            p.filter_deltas = {}
        for key, flow in (self.filter_deltas or {}).items():
            mine = p.filter_deltas.get(key)
            if mine is None:
                p.filter_deltas[key] = list(flow)
            else:
                for i in range(4):
                    mine[i] += flow[i]

    def changeset(self, at: int, activity: bool = True) -> ChangeSet:
        """The root's changes as rows: each touched bucket's balance and running flows (and, on its first move
        in a minute, a snapshot of its flows before it, when the store keeps `activity`), the journal rows, and
        the rest as records. A bucket's row says the minute it last moved in either way, so snapshots built from
        the journal later (store/filters.py) agree with it.

        The chunk's last step: the ledger's state takes the buckets' new rows now, in the same pass, as they will
        be once the rows are written; a write or commit that fails drops the whole state (ledger/state.py)."""
        flows = self.flow_deltas
        rows_read = self._rows_read
        unread = {a for a in self._tags_by_account if a not in rows_read}  # the accounts `flows` moves
        self._read_bucket_rows(unread)
        minute = at // 60
        # No activity kept, on a store that takes them: each bucket's change as one upsert (ChangeSet.bucket_upserts),
        # and the state keeps the balances but not the rows' flows and minutes, which only activity snapshots
        # read (a third of this loop's work per bucket); its rows are then stale (StoredState.rows_stale).
        upsert = self.upsert_buckets and not activity
        if (
            upsert
            and not self.entries
            and len(flows) * 2 >= len(self.plain_entries) * limits.legs_buckets_per_row_twice
        ):
            # Only plain untagged transfers moved money (whatever else applies journals an entry): the store moves
            # the buckets by their rows' legs (ChangeSet.legs_from_rows), and the state takes the new balances.
            return self._balances_taken(minute)
        buckets, new_buckets, snapshots, upserts = [], [], [], []
        ids, stored_rows, balances, whole_of = (
            self._ids,
            self._bucket_rows,
            self._bucket_cache,
            self._buckets_cache,
        )
        tag_ids = self.state.tag_ids or {}
        for key, (out, out_n, in_, in_n) in flows.items():
            account, tag = key
            delta = in_ - out
            aid = ids.get(account)
            if aid is None:
                aid = self.account_id(account)
            tid = tag_ids.get(tag)
            if tid is None:
                tid = self.tag_id(tag)
                tag_ids = self.state.tag_ids or {}
            if upsert:
                upserts.append((delta, out, out_n, in_, in_n, minute, aid, tid))
                # every touched account's rows were read (prefetch, or above): a key absent has no row
                balance = balances.get(key, 0) + delta
            elif (stored := stored_rows.get(key)) is None:
                new_buckets.append((delta, out, out_n, in_, in_n, minute, aid, tid))
                if activity:
                    snapshots.append((aid, tid, minute, 0, 0, 0, 0))
                stored_rows[key] = (delta, out, out_n, in_, in_n, minute)  # a BucketRow's fields
                balance = delta
            else:
                balance, out_s, out_n_s, in_s, in_n_s, last = stored
                if last < minute:
                    if activity:
                        snapshots.append((aid, tid, minute, out_s, out_n_s, in_s, in_n_s))
                    last = minute
                buckets.append((delta, out, out_n, in_, in_n, last, aid, tid))
                balance += delta
                stored_rows[key] = (balance, out_s + out, out_n_s + out_n, in_s + in_, in_n_s + in_n, last)
            balances[key] = balance
            if tag and (whole := whole_of.get(account)) is not None:
                if balance:
                    whole[tag] = balance
                else:
                    whole.pop(tag, None)
        if upsert:
            self.state.rows_stale = True
            return self._changes(minute, bucket_upserts=upserts)
        return self._changes(minute, buckets=buckets, new_buckets=new_buckets, activity=snapshots)

    def _balances_taken(self, minute: int) -> ChangeSet:
        """`changeset` for a chunk whose buckets are all untagged (`legs_from_rows`): the state takes their new
        balances, and `account_buckets`, which holds tagged buckets only, has nothing to take."""
        balances = self._bucket_cache
        for key, flow in self.flow_deltas.items():
            balances[key] = balances.get(key, 0) + flow[2] - flow[0]  # every touched account's rows were read
        self.state.rows_stale = True
        return self._changes(minute, legs_from_rows=True)

    def _changes(self, minute: int, **buckets: object) -> ChangeSet:
        """The root's changes as rows, around its buckets' (`changeset` makes them)."""
        filter_flows, filter_activity = self._filter_rows(minute)
        return ChangeSet(
            accounts=[(self.account_id(h), a) for h, a in self.accounts.items()],
            tag_names=list(self._new_tags),
            entries=list(self.entries),
            plain_entries=list(self.plain_entries),
            legs=list(self.legs),
            holds=dict(self.holds),
            tags=dict(self.tags),
            issued_delta=self.issued_delta,
            redeemed_delta=self.redeemed_delta,
            head=self.head_value,
            links_deferred=self.links_deferred and bool(self.entries or self.plain_entries),
            traces=list(self.traces),
            reports=list(self.reports),
            filter_flows=filter_flows,
            filter_activity=filter_activity,
            **buckets,
        )

    def _filter_rows(self, minute: int) -> tuple[list[tuple], list[tuple]]:
        """The chunk's filtered flows as upserts, with a snapshot of each row's flows on its first move in a
        minute (the store's rows of the touched (account, filter) pairs read in one query)."""
        if not self.filter_deltas:
            return [], []
        stored = self.tx.filter_rows(set(self.filter_deltas))
        flows, activity = [], []
        for (handle, key), (out, out_n, in_, in_n) in sorted(self.filter_deltas.items()):
            aid = self.account_id(handle)
            row = stored.get((handle, key))
            if row is None:
                activity.append((aid, key, minute, 0, 0, 0, 0))
                last = minute
            else:
                if row.minute < minute:
                    activity.append(
                        (aid, key, minute, row.out_tiyn, row.out_count, row.in_tiyn, row.in_count)
                    )
                last = max(minute, row.minute)
            flows.append((out, out_n, in_, in_n, last, aid, key))
        return flows, activity
