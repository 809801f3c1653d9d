"""Building the history a policy set's windows read from the journal, when a set that reads history the ledger
does not keep yet is enabled: the counterparty-filtered running flows of the filters it names, and the
per-minute snapshots of the unfiltered flows (`activity`) when any of its windows reads those. A set that
needs less drops the rest (none is kept while no set is enabled).

Read in one snapshot, written in one transaction that first finds the journal where the snapshot left it (a
writer that got in between means reading again), so no posting is counted twice or missed."""

from __future__ import annotations

from ..core import limits
from ..core.errors import WriteConflict
from ..core.windows import (
    ACTIVITY_SETTING,
    FILTERS_SETTING,
    ActivityReplay,
    FilterReplay,
    keeps_activity,
    kept_filters,
)
from .base import ChangeSet


def rebuild_window_filters(
    store, keys: frozenset[str], settings: dict | None = None, activity: bool | None = None
) -> bool:
    """Keep exactly the filtered flows of `keys`, and the activity snapshots when `activity` (None: as they are),
    built from the journal; False when they were kept already. `settings` are changed in the same transaction
    (the policy set that reads them goes live with them)."""
    current = store.meta().settings
    rebuild_filters = kept_filters(current) != keys
    change_activity = activity is not None and keeps_activity(current) != activity
    if not rebuild_filters and not change_activity:
        if settings:
            with store.transaction() as tx:
                tx.write(ChangeSet(settings=dict(tx.meta().settings, **settings)))
        return False
    build_activity = bool(activity) and change_activity
    for _ in range(limits.write_conflict_retries_max):
        buckets = ActivityReplay()  # the snapshots ledger/working.py changeset writes, from the journal
        with store.snapshot():
            head = store.head()
            replay = FilterReplay(keys, store.meta().central_bank)
            if rebuild_filters or build_activity:
                for op, postings in store.journal():
                    legs = [(p.account, p.amount_tiyn, p.tag) for p in postings]
                    if rebuild_filters:
                        replay.apply(op.operation, op.at, legs)
                    if build_activity:
                        buckets.apply(op.at, legs)
        with store.transaction() as tx:
            if tx.head() != head:
                continue
            ids = tx.account_ids({h for h, _ in replay.flows} | {h for h, _ in buckets.flows})
            tag_ids = tx.tag_ids() if buckets.activity else {}
            kept = (
                {FILTERS_SETTING: sorted(keys)}
                if activity is None
                else {FILTERS_SETTING: sorted(keys), ACTIVITY_SETTING: activity}
            )
            tx.write(
                ChangeSet(
                    activity=[
                        (ids[h], tag_ids[t], minute, *snapshot)
                        for (h, t, minute), snapshot in sorted(buckets.activity.items())
                    ],
                    activity_reset=change_activity,
                    filter_flows=[(*flow, ids[h], key) for (h, key), flow in sorted(replay.flows.items())],
                    filter_activity=[
                        (ids[h], key, minute, *snapshot)
                        for (h, key, minute), snapshot in sorted(replay.activity.items())
                    ],
                    filters_reset=rebuild_filters,
                    settings=dict(tx.meta().settings, **(settings or {}), **kept),
                )
            )
            return True
    raise WriteConflict("the journal kept moving while the history windows read was rebuilt; try again")
