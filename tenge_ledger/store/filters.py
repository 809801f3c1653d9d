"""Building the counterparty-filtered running flows of a policy set from the journal, when a set that names
filters the ledger does not keep yet is enabled (or a set is disabled: none are kept then).

Read in one snapshot, written in one transaction that first finds the journal where the snapshot left it (a
writer that got in between means reading again), so no posting is counted twice or missed."""

from __future__ import annotations

import json

from ..core import limits
from ..core.errors import WriteConflict
from ..core.windows import FilterReplay
from .base import ChangeSet
from .entries import operation_from_document

SETTING = "window_filters"  # the ledger's setting: the filter keys whose flows the store keeps


def kept_filters(settings: dict) -> frozenset[str]:
    return frozenset(settings.get(SETTING) or ())


def rebuild_window_filters(store, keys: frozenset[str], settings: dict | None = None) -> bool:
    """Keep exactly the filtered flows of `keys`, built from the journal; False when they were kept already.
    `settings` are changed in the same transaction (the policy set that reads the filters goes live with them)."""
    if kept_filters(store.meta().settings) == keys:
        if settings:
            with store.transaction() as tx:
                tx.write(ChangeSet(settings=dict(tx.meta().settings, **settings)))
        return False
    for _ in range(limits.write_conflict_retries_max):
        with store.snapshot():
            head = store.head()
            replay = FilterReplay(keys, store.meta().central_bank)
            for op, postings in store.journal():
                operation = operation_from_document(json.loads(op.document))
                replay.apply(operation, op.at, [(p.account, p.amount_tiyn, p.tag) for p in postings])
        with store.transaction() as tx:
            if tx.head() != head:
                continue
            ids = tx.account_ids({handle for handle, _ in replay.flows})
            tx.write(
                ChangeSet(
                    filter_flows=[(*flow, ids[h], key) for (h, key), flow in sorted(replay.flows.items())],
                    filter_activity=[
                        (ids[h], key, minute, *snapshot)
                        for (h, key, minute), snapshot in sorted(replay.activity.items())
                    ],
                    filters_reset=True,
                    settings=dict(tx.meta().settings, **(settings or {}), **{SETTING: sorted(keys)}),
                )
            )
            return True
    raise WriteConflict("the journal kept moving while the filtered history was rebuilt; try again")
