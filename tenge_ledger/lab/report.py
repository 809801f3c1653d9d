"""The matrix as a self-contained HTML page a reviewer reads at a glance: per role, a chart of privacy against
detection with a legend and the seed spread as error bars; a rule-coverage chart per mode; a short reading of
the trade-off in plain words; then the tables. No external assets, no scripts; every label sits inside its chart
(`tests/test_privacy_report.py` checks it in headless Chromium)."""

from __future__ import annotations

import html
import time

from ..core.canonical import format_time
from ..core.files import write_private
from ..privacy.visibility import MODE_SUMMARY
from .detectors import PATTERNS

COLORS = ["#1b6ca8", "#d1495b", "#c98a00", "#00798c", "#6a4c93", "#3d7a2a"]
MARKERS = ["circle", "square", "diamond", "triangle", "circle", "square"]
ROLE_NAMES = {
    "central_bank": "the central bank",
    "fma": "the FMA (financial monitoring agency)",
    "bank": "a commercial bank",
    "account": "an account holder",
    "public": "the public",
}
e = html.escape


# ---- the scores --------------------------------------------------------------------------------------------------


def privacy_score(mode_result: dict, role: str = "fma", values: dict | None = None) -> float:
    """1 - the mean of the shares of same-payer pairs and same-payee pairs the role links and of amounts it
    reads: how much of the payment graph and the amounts stays out of its sight (0 all visible, 1 nothing)."""
    m = values if values is not None else mode_result["roles"][role]
    return round(1 - (m["linkable_pairs"] + m.get("payee_linkable_pairs", 0.0) + m["amounts_read"]) / 3, 3)


def detection_score(mode_result: dict, role: str = "fma", recalls: dict | None = None) -> float:
    """Mean recall of the planted patterns by the role from the stored trace (over the patterns of which some
    planted payment was applied)."""
    if recalls is None:
        detection = mode_result.get("detection", {}).get(role)
        recalls = {p: detection[p]["recall"] for p in PATTERNS} if detection else mode_result["recall"]
    scored = [recalls[p] for p in PATTERNS if recalls.get(p) is not None]
    return round(sum(scored) / len(scored), 3) if scored else 0.0


def _ranges(result: dict, mode: str, role: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """(privacy [low, high], detection [low, high]) over the seeds, when several ran."""
    spread = result.get("spread", {}).get("modes", {}).get(mode)
    if not spread:
        return None
    roles = spread["roles"][role]
    low = {k: v[1] for k, v in roles.items() if isinstance(v, list)}  # most visible: least private
    high = {k: v[0] for k, v in roles.items() if isinstance(v, list)}
    detection = spread.get("detection", {}).get(role, {})

    def recalls(end: int) -> dict:
        return {p: (detection.get(p, {}).get("recall") or [None, None])[end] for p in PATTERNS}

    return (
        (privacy_score({}, values=low), privacy_score({}, values=high)),
        (detection_score({}, recalls=recalls(0)), detection_score({}, recalls=recalls(1))),
    )


# ---- charts ------------------------------------------------------------------------------------------------------


def _marker(shape: str, x: float, y: float, color: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="{color}" stroke="#222"/>'
    if shape == "diamond":
        return (f'<polygon points="{x:.1f},{y - 8:.1f} {x + 8:.1f},{y:.1f} {x:.1f},{y + 8:.1f} {x - 8:.1f},{y:.1f}" '
                f'fill="{color}" stroke="#222"/>')  # fmt: skip
    if shape == "triangle":
        return (f'<polygon points="{x:.1f},{y - 8:.1f} {x + 8:.1f},{y + 6:.1f} {x - 8:.1f},{y + 6:.1f}" '
                f'fill="{color}" stroke="#222"/>')  # fmt: skip
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{color}" stroke="#222"/>'


def role_chart(result: dict, role: str) -> str:
    """Privacy from `role` (x) against what `role` detects (y), one marker per mode; the legend, to the right of
    the plot, names each mode with its two figures, so no label sits on another."""
    plot, pad_left, pad_top, pad_bottom, legend_w = 300, 62, 34, 58, 300
    width, height = pad_left + plot + 24 + legend_w, pad_top + plot + pad_bottom
    x0, y0 = pad_left, pad_top
    title = f"What {ROLE_NAMES.get(role, role)} sees and detects"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
        f'<text x="{x0}" y="20" font-size="14" font-weight="bold">{e(title)}</text>',
        f'<rect x="{x0}" y="{y0}" width="{plot}" height="{plot}" fill="#fafafa" stroke="#999"/>',
    ]
    for i in range(6):
        v = i / 5
        x, y = x0 + v * plot, y0 + plot - v * plot
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + plot}" stroke="#e5e5e5"/>')
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + plot}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + plot + 16}" font-size="11" text-anchor="middle">{v:.1f}</text>'
        )
        parts.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{x0 + plot / 2}" y="{y0 + plot + 38}" font-size="12" text-anchor="middle">'
                 "privacy (1 = it links and reads nothing)</text>")  # fmt: skip
    cy = y0 + plot / 2
    parts.append(f'<text x="16" y="{cy}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {cy})">'
                 "detection (mean recall)</text>")  # fmt: skip
    seen: dict[tuple[int, int], int] = {}
    legend_x = x0 + plot + 24
    parts.append(
        f'<text x="{legend_x}" y="{y0 + 4}" font-size="12" font-weight="bold">mode (privacy, detection)</text>'
    )
    for i, (mode, r) in enumerate(result["modes"].items()):
        px, dy = privacy_score(r, role), detection_score(r, role)
        x, y = x0 + px * plot, y0 + plot - dy * plot
        key = (round(x), round(y))
        dodge = seen.get(key, 0)  # modes on the same spot sit side by side, not on top of each other
        seen[key] = dodge + 1
        x += dodge * 14 * (-1 if px > 0.5 else 1)
        color, shape = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
        spread = _ranges(result, mode, role)
        if spread:
            (p_lo, p_hi), (d_lo, d_hi) = spread
            parts.append(f'<line class="error-bar" x1="{x0 + p_lo * plot:.1f}" y1="{y:.1f}" x2="{x0 + p_hi * plot:.1f}" '
                         f'y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')  # fmt: skip
            parts.append(f'<line class="error-bar" x1="{x:.1f}" y1="{y0 + plot - d_lo * plot:.1f}" x2="{x:.1f}" '
                         f'y2="{y0 + plot - d_hi * plot:.1f}" stroke="{color}" stroke-width="2"/>')  # fmt: skip
        parts.append(_marker(shape, x, y, color))
        ly = y0 + 26 + i * 22
        parts.append(_marker(shape, legend_x + 8, ly - 4, color))
        parts.append(
            f'<text x="{legend_x + 22}" y="{ly}" font-size="12">{e(mode)} ({px:.2f}, {dy:.2f})</text>'
        )
    if "spread" in result:
        ly = y0 + 26 + len(result["modes"]) * 22 + 6
        parts.append(f'<text x="{legend_x}" y="{ly}" font-size="11" fill="#555">bars: range over '
                     f'{len(result.get("seeds", []))} seeds</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def coverage_chart(result: dict) -> str:
    """Per mode, how many rules of the policy set could still run over what the FMA sees: on every payment, on
    some, on none."""
    label_w, bar_w, count_w, row_h, top = 150, 360, 300, 26, 48
    modes = list(result["modes"].items())
    width, height = label_w + bar_w + count_w, top + row_h * len(modes) + 40
    total = max(1, max(len(r["rules"]) for _, r in modes))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="rule coverage per mode">',
        '<text x="0" y="18" font-size="14" font-weight="bold">Rules of the policy set that could still run on '
        "what the FMA sees</text>",
    ]
    for j, (name, color) in enumerate(
        (("on every payment", "#3d7a2a"), ("on some", "#c98a00"), ("on none", "#bbb"))
    ):
        lx = label_w + j * 130
        parts.append(f'<rect x="{lx}" y="28" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{lx + 16}" y="38" font-size="11">{name}</text>')
    for i, (mode, r) in enumerate(modes):
        shares = list(r["rules"].values())
        full = sum(1 for s in shares if s >= 0.999)
        some = sum(1 for s in shares if 0 < s < 0.999)
        none = len(shares) - full - some
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end">{e(mode)}</text>'
        )
        x = label_w
        for count, color in ((full, "#3d7a2a"), (some, "#c98a00"), (none, "#bbb")):
            w = bar_w * count / total
            if w:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>'
                )
            x += w
        parts.append(f'<text x="{label_w + bar_w + 8}" y="{y + 15}" font-size="12">{full:g} of {len(shares)} '
                     f"on every payment, {some:g} on some</text>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


# ---- the reading -------------------------------------------------------------------------------------------------


def reading(result: dict) -> list[str]:
    """A few sentences a reviewer can take away, computed from the figures."""
    modes = result["modes"]
    fma = {m: (privacy_score(r, "fma"), detection_score(r, "fma")) for m, r in modes.items()}
    best_detect = max(fma, key=lambda m: fma[m][1])
    most_private = max(fma, key=lambda m: (fma[m][0], fma[m][1]))
    balanced = max(
        (m for m in fma if fma[m][0] > 0), key=lambda m: fma[m][0] + fma[m][1], default=best_detect
    )
    out = [
        f"For the FMA, {best_detect} detects the most from the stored trace (mean recall {fma[best_detect][1]:.2f}) "
        f"at a privacy of {fma[best_detect][0]:.2f}; {most_private} keeps the most from it (privacy "
        f"{fma[most_private][0]:.2f}) and detects {fma[most_private][1]:.2f} from the trace.",
        f"Of the modes that hide something from the FMA, {balanced} gives the best sum of the two "
        f"({fma[balanced][0]:.2f} privacy, {fma[balanced][1]:.2f} detection).",
    ]
    t = modes.get("transparent", {}).get("detection", {}).get("fma")
    if t:
        false = sum(t[p]["false_alarms"] for p in PATTERNS)
        out.append(f"Even with everything in clear the detectors raise {false:g} false alarms on legitimate "
                   "look-alikes and miss planted cases outside their windows: detection is never free.")  # fmt: skip
    prevented = next(iter(modes.values())).get("prevented", {})
    if any(prevented.values()):
        stopped = ", ".join(f"{n:g} {p}" for p, n in prevented.items() if n)
        out.append(f"Rules run at apply time see every operation in every mode: the policy set stopped {stopped} "
                   "payments before they were recorded, whatever the mode.")  # fmt: skip
    return out


# ---- the page ----------------------------------------------------------------------------------------------------


def _num(value: object, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def render(result: dict, generated_at: int | None = None) -> str:
    roles = list(next(iter(result["modes"].values()))["roles"])
    seeds = result.get("seeds", [result["seed"]])
    planted = ", ".join(f"{p} {n:g}" for p, n in result["planted"].items())
    rows = []
    for mode, r in result["modes"].items():
        for role, m in r["roles"].items():
            rows.append(
                f"<tr><td>{e(mode)}</td><td>{e(role)}</td><td>{_num(m['linkable_pairs'])}</td>"
                f"<td>{_num(m.get('payee_linkable_pairs'))}</td><td>{_num(m['amounts_read'])}</td>"
                f"<td>{_num(m['anonymity_set'], '.1f')}</td><td>{_num(m['entropy_bits'])}</td>"
                f"<td>{_num(m.get('rules_running'), 'g')}</td></tr>"
            )
    detection_rows = []
    for mode, r in result["modes"].items():
        for role, d in r.get("detection", {}).items():
            cells = "".join(
                f"<td>{_num(d[p]['recall'])} / {_num(d[p]['precision'])} / {d[p]['false_alarms']:g}</td>"
                for p in PATTERNS
            )
            detection_rows.append(f"<tr><td>{e(mode)}</td><td>{e(role)}</td>{cells}</tr>")
    meta_rows = "".join(
        f"<tr><td>{e(mode)}</td><td>{r['metadata']['rule_names_clear']:.2f}</td>"
        f"<td>{r['metadata']['sealed_length_classes']:g}</td><td>{r['metadata']['unique_times']:.2f}</td>"
        f"<td>{r['watchlist_queries']:g}</td><td>{r['access_records']:g}</td></tr>"
        for mode, r in result["modes"].items()
        if "metadata" in r
    )
    summary = "".join(f"<li><b>{e(m)}</b>: {e(s)}</li>" for m, s in MODE_SUMMARY.items())
    charts = "".join(f'<figure id="role-{e(role)}">{role_chart(result, role)}</figure>' for role in roles)
    when = format_time(int(time.time()) if generated_at is None else generated_at)
    take = "".join(f"<li>{e(s)}</li>" for s in reading(result))
    means = " Figures are means over the seeds; bars show their range." if len(seeds) > 1 else ""
    pattern_heads = "".join(f"<th>{e(p)}</th>" for p in PATTERNS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenge-ledger privacy matrix</title>
<style>
body {{ font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 1120px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #eee; }} td {{ text-align: right; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
figure {{ margin: 1em 0; }} svg.chart {{ display: block; overflow: visible; }} svg text {{ font-family: inherit; }}
</style></head><body>
<h1>Privacy / anti-corruption matrix</h1>
<p>Seed{"s" if len(seeds) > 1 else ""} {e(", ".join(map(str, seeds)))}; {result["people"]:g} people,
{round(result["payments"]):,} payments over eight weeks; planted: {e(planted)}. Generated {e(when)}
in {result["seconds"]:g} s. Every figure comes from observer code decoding each mode's stored trace with only the
keys each role holds; the ground truth only scores it.{means}</p>
<h2>The trade-off, in plain words</h2>
<ul id="reading">{take}</ul>
<p>Honest scope: the engine sees every operation when it applies it. A mode controls what is kept and who may read
it afterwards (role-view privacy with logged access), not anonymity against the operator.</p>
<ul>{summary}</ul>
<h2>Privacy against detection, per role</h2>
{charts}
<h2>Rule coverage per mode</h2>
<figure id="coverage">{coverage_chart(result)}</figure>
<h2>What each role can reconstruct</h2>
<table><tr><th>mode</th><th>role</th><th>linkable same-payer pairs</th><th>linkable same-payee pairs</th>
<th>amounts read</th><th>payer anonymity set</th><th>entropy (bits)</th><th>rules it could run</th></tr>{"".join(rows)}</table>
<h2>Detection from the stored trace: recall / precision / false alarms</h2>
<table><tr><th>mode</th><th>role</th>{pattern_heads}</tr>{"".join(detection_rows)}</table>
<p>Recall "-": the policy set stopped every planted payment of the pattern at apply time. Precision "-": nothing
flagged. Detector settings: <code>tenge_ledger/lab/detectors.py</code>.</p>
<h2>Metadata and lawful access</h2>
<table><tr><th>mode</th><th>rule names in clear</th><th>sealed length classes</th><th>unique times</th>
<th>watchlist queries</th><th>access records logged</th></tr>{meta_rows}</table>
<p>Rules from the {e(result["rules_source"])}.</p>
</body></html>
"""


def write_html(result: dict, path: str) -> None:
    write_private(path, render(result))
