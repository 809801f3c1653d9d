"""The matrix as a self-contained HTML page: tables and an inline SVG chart of privacy against detection per mode.
No external assets, no scripts: a reviewer opens the file in any browser."""

from __future__ import annotations

import html
from pathlib import Path

from ..privacy.visibility import MODE_SUMMARY
from .matrix import PATTERNS

COLORS = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#6a4c93", "#30638e"]


def privacy_score(mode_result: dict) -> float:
    """1 - the FMA's share of linkable same-payer pairs, averaged with 1 - its share of amounts read: how much
    of the payer graph and amounts stays out of the supervisor's sight (0 = all visible, 1 = nothing)."""
    fma = mode_result["roles"]["fma"]
    return round(1 - (fma["linkable_pairs"] + fma["amounts_read"]) / 2, 3)


def detection_score(mode_result: dict) -> float:
    """Mean recall of the planted patterns by the FMA with its lawful access in the mode (over the patterns of
    which some planted payment was applied)."""
    scored = [mode_result["recall"][p] for p in PATTERNS if mode_result["recall"][p] is not None]
    return round(sum(scored) / len(scored), 3) if scored else 0.0


def _recall(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def chart_svg(result: dict, width: int = 560, height: int = 420) -> str:
    pad = 60
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="privacy against detection per mode">',
        f'<rect x="{pad}" y="{pad}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#999"/>',
    ]
    for i in range(6):
        v = i / 5
        x = pad + v * inner_w
        y = pad + inner_h - v * inner_h
        parts.append(f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{pad + inner_h}" stroke="#e5e5e5"/>')
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{pad + inner_w}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{pad + inner_h + 16}" font-size="11" text-anchor="middle">{v:.1f}</text>'
        )
        parts.append(f'<text x="{pad - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.1f}</text>')
    parts.append(
        f'<text x="{pad + inner_w / 2}" y="{height - 14}" font-size="13" text-anchor="middle">'
        "privacy from the FMA (1 - mean of linkable pairs and amounts read)</text>"
    )
    parts.append(
        f'<text x="16" y="{pad + inner_h / 2}" font-size="13" text-anchor="middle" '
        f'transform="rotate(-90 16 {pad + inner_h / 2})">detection (mean recall of planted patterns)</text>'
    )
    for i, (mode, r) in enumerate(result["modes"].items()):
        px, dy = privacy_score(r), detection_score(r)
        x = pad + px * inner_w
        y = pad + inner_h - dy * inner_h
        color = COLORS[i % len(COLORS)]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{color}" stroke="#333"/>')
        parts.append(
            f'<text x="{x + 10:.1f}" y="{y - 8 - (i % 2) * 12:.1f}" font-size="12" fill="#222">'
            f"{html.escape(mode)} ({px:.2f}, {dy:.2f})</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def render(result: dict) -> str:
    e = html.escape
    rows = []
    for mode, r in result["modes"].items():
        for m in r["roles"].values():
            rows.append(
                f"<tr><td>{e(mode)}</td><td>{e(m['role'])}</td><td>{m['linkable_pairs']:.2f}</td>"
                f"<td>{m['amounts_read']:.2f}</td><td>{m['anonymity_set']:.1f}</td><td>{m['entropy_bits']:.2f}</td></tr>"
            )
    recall_rows = []
    for mode, r in result["modes"].items():
        cells = "".join(
            f"<td>{_recall(r['recall'][p])} <small>({r['flags'][p]:g} flagged, {r['false_flags'][p]:g} false; "
            f"{r.get('prevented', {}).get(p, 0):g} stopped by the policy set)</small></td>"
            for p in PATTERNS
        )
        rules = ", ".join(f"{e(k)} {v:.2f}" for k, v in r["rules"].items())
        recall_rows.append(
            f"<tr><td>{e(mode)}</td>{cells}<td>{r['watchlist_queries']}</td><td>{r['access_records']}</td>"
            f"<td><small>{rules}</small></td></tr>"
        )
    modes = "".join(f"<li><b>{e(m)}</b>: {e(s)}</li>" for m, s in MODE_SUMMARY.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenge-ledger privacy matrix (seed {result["seed"]})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #eee; }} td {{ text-align: right; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
</style></head><body>
<h1>Privacy / anti-corruption matrix</h1>
<p>Seed {result["seed"]}: {result["people"]} people, {result["payments"]} payments over eight weeks; planted
patterns {e(str(result["planted"]))}. Every figure below comes from running observer code over the stored trace of
each mode with only the keys each role holds; the ground truth only scores it. Run in {result["seconds"]} s.</p>
<p>Honest scope: the engine sees every operation when it applies it. A mode controls what is kept and who may read
it afterwards (role-view privacy with logged access), not anonymity against the operator.</p>
<ul>{modes}</ul>
<h2>Privacy against detection</h2>
{chart_svg(result)}
<h2>What each role can reconstruct</h2>
<table><tr><th>mode</th><th>role</th><th>linkable same-payer pairs</th><th>amounts read</th>
<th>payer anonymity set</th><th>entropy (bits)</th></tr>{"".join(rows)}</table>
<h2>FMA recall of planted patterns with its lawful access</h2>
<table><tr><th>mode</th>{"".join(f"<th>{p}</th>" for p in PATTERNS)}<th>watchlist queries</th>
<th>access records logged</th><th>rules still running (share of payments; {e(result["rules_source"])})</th></tr>
{"".join(recall_rows)}</table>
</body></html>
"""


def write_html(result: dict, path: str) -> None:
    Path(path).write_text(render(result))
