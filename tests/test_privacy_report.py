"""The matrix report in a real browser: headless Chromium lays the page out and a probe measures every chart
label. Every mode and role is there, no label is clipped by its chart or sits on another, and the page holds no
Python repr, no absolute path and an ISO time."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from tenge_ledger.lab import matrix, report
from tenge_ledger.privacy.visibility import MODES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROLES = ("central_bank", "fma", "bank", "account", "public")

# Measures, after layout, each <text> of each chart against its <svg> box and against the other labels.
PROBE = """<script>
const out = {charts: 0, texts: 0, clipped: [], overlaps: [], legends: {}};
for (const svg of document.querySelectorAll("svg.chart")) {
  out.charts++;
  const box = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll("text")].map(t => [t.getBoundingClientRect(), t.textContent]);
  for (const [r, text] of labels) {
    out.texts++;
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
      out.clipped.push(text);
  }
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
    const [a, ta] = labels[i], [b, tb] = labels[j];
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) out.overlaps.push(ta + " / " + tb);
  }
  const figure = svg.closest("figure");
  if (figure) out.legends[figure.id] = labels.map(([, t]) => t).join("\\n");
}
document.body.setAttribute("data-probe", JSON.stringify(out));
</script>"""


@pytest.fixture(scope="module")
def result():
    return matrix.run_seeds(seed=3, seeds=2, people=60)


@pytest.fixture(scope="module")
def page(result, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "matrix.html"
    report.write_html(result, str(path))
    return path


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)",
)
def test_report_in_chromium__every_mode_and_role__no_label_clipped_or_overlapping(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, "the probe did not run"
    out = json.loads(html.unescape(found.group(1)))
    assert out["charts"] == len(ROLES) + 1 and out["texts"] > 100
    assert out["clipped"] == []
    assert out["overlaps"] == []
    for role in ROLES:
        legend = out["legends"][f"role-{role}"]
        assert all(mode in legend for mode in MODES), role
    assert all(mode in out["legends"]["coverage"] for mode in MODES)


def test_report__no_repr_no_absolute_path_iso_time(page, result):
    text = page.read_text()
    assert "{'" not in text and "['" not in text and "None" not in text and "<script" not in text
    assert (
        "/tmp/" not in text and "/work/" not in text and "/home/" not in text and str(page.parent) not in text
    )
    assert re.search(r"Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert 'class="error-bar"' in text  # several seeds: their spread is drawn
    for mode in MODES:
        assert mode in text
    assert "The trade-off, in plain words" in text and text.count("<li>") >= 3


def test_report__one_seed_draws_no_error_bars(result):
    single = matrix.run(seed=3, people=50)
    assert 'class="error-bar"' not in report.render(single, generated_at=0)
    assert "1970-01-01T00:00:00Z" in report.render(single, generated_at=0)
