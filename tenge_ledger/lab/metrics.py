"""The matrix's measures over what one role sees: linkability, amounts read, anonymity sets, and what a reader with
no key at all gets from the metadata."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from ..privacy.seal import unb64
from ..privacy.views import RecordView


def payments(views: list[RecordView]) -> list[RecordView]:
    return [v for v in views if v.type == "op" and v.kind in ("transfer", "hold") and v.code == "ok"]


def linkable_pair_share(views: list[RecordView], truth: dict[str, str], field: str = "payer") -> float:
    """Of all pairs of payments by the same payer (or to the same payee), the share this observer can link: both
    fields shown as the same clear value or the same pseudonym (one-time tokens never repeat)."""
    by_payer: dict[str, Counter] = defaultdict(Counter)
    for v in views:
        payer = truth.get(v.op_id)
        if payer is None:
            continue
        f = v.fields[field]
        token = (f.level, f.value) if f.level in ("clear", "pseudonym") else ("unlinkable", v.op_id)
        by_payer[payer][token] += 1
    total = linked = 0
    for counts in by_payer.values():
        n = sum(counts.values())
        total += n * (n - 1) // 2
        linked += sum(c * (c - 1) // 2 for c in counts.values())
    return linked / total if total else 0.0


def amount_share(views: list[RecordView]) -> float:
    if not views:
        return 0.0
    return sum(1 for v in views if v.fields["amount"].level == "clear") / len(views)


def anonymity(views: list[RecordView], truth: dict[str, str]) -> tuple[float, float]:
    """(mean payer anonymity set size, mean entropy in bits) over payments. A payer shown in clear has a set of
    one. Otherwise the candidates are the payers of every payment whose payer this observer cannot read, weighted
    by how often each pays (what an observer who knows activity levels can do); a pseudonym counts as unread."""
    if not views:
        return 0.0, 0.0
    hidden = [truth[v.op_id] for v in views if v.fields["payer"].level != "clear" and v.op_id in truth]
    counts = Counter(hidden)
    total = sum(counts.values())
    size = len(counts)
    entropy = -sum((c / total) * math.log2(c / total) for c in counts.values()) if total else 0.0
    n = len(views)
    shown = n - len(hidden)
    return (shown * 1 + len(hidden) * size) / n, (len(hidden) * entropy) / n


SEALED_FIELDS = ("sealed", "fma_ident", "payer_sealed", "payee_sealed", "rules")


def metadata_leaks(docs: list[dict]) -> dict:
    """What an observer with no key at all reads off the stored payment records' metadata: the share whose rule
    names are in clear (they say what kind of party a payment touches), how many distinct sealed-field lengths
    occur (each distinct length is something a length can tell), and how finely time is kept (the share of
    payments whose ledger time no other payment shares)."""
    payments = [d for d in docs if d.get("kind") in ("transfer", "hold")]
    n = max(1, len(payments))
    clear_rules = sum(
        1 for d in payments if isinstance(d.get("rules", d.get("record", {}).get("rules")), list)
    )
    lengths = {len(unb64(d[f])) for d in payments for f in SEALED_FIELDS if isinstance(d.get(f), str | bytes)}
    times = Counter(d.get("at") for d in payments)
    return {
        "rule_names_clear": round(clear_rules / n, 4),
        "sealed_length_classes": len(lengths),
        "unique_times": round(sum(1 for d in payments if times[d.get("at")] == 1) / n, 4),
    }
