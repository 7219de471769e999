"""The chart page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright),
against `iotpipe serve` on 127.0.0.1 with seeded data: the pickers list the datasets and
devices, the stats table and the charts show the right numbers (every reading when the range
fits one page, buckets sized to the chart otherwise, on a labelled time axis), paging moves
through the rows, and the dataset's category codes are shown.

``IOTPIPE_UPDATE_SCREENSHOT=1`` also saves the page to docs/page.png."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iotpipe.contract import load_contract
from iotpipe.local.server import ReadingsServer
from iotpipe.local.stack import free_port
from iotpipe.sample import SampleTruth
from iotpipe.times import iso_z
from tests.integration.conftest import load_sample

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "page.png"
ACME = load_contract("acme_usage")
FIELDS = [f.name for f in ACME.fields]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, SampleTruth]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run and scripts/setup install it)")
    url = f"sqlite:///{tmp_path}/page.db"
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", url)
    path = tmp_path / "p.csv"
    truth = load_sample(url, path, 6000, devices=2, seed=61)
    server = ReadingsServer("127.0.0.1", free_port(), quiet=True).start_in_thread()
    try:
        yield server.url, truth
    finally:
        server.stop()


def api(base: str, path: str) -> Any:
    return json.loads(urllib.request.urlopen(f"{base}{path}", timeout=10).read())


def values_of(rows: list[Any], name: str) -> list[Any]:
    i = 2 + FIELDS.index(name)
    return [r[i] for r in rows if r[i] is not None]


def test_page_shows_the_right_stats_and_charts(
    served: tuple[str, SampleTruth], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, truth = served
    assert truth.rows is not None
    device = "dev-00001"
    mine = sorted((r for r in truth.rows.values() if r[0] == device), key=lambda r: r[1])
    start, end = mine[0][1], mine[400][1]
    in_range = [r for r in mine if start <= r[1] <= end]
    spec = api(base, "/openapi.json")
    assert spec["openapi"] == "3.1.0"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            query = f"device_id={device}&start={iso_z(start)}&end={iso_z(end)}"
            page.goto(f"{base}/?{query}&limit=150")
            page.wait_for_selector("body[data-state=loaded]", timeout=30_000)
            assert page.inner_text("#summary").startswith(f"{device}: {len(in_range)} rows")

            # Pickers: the datasets and devices the API lists.
            datasets = page.eval_on_selector_all("#dataset option", "os => os.map(o => o.value)")
            assert datasets == ["acme_usage"]
            devices = page.eval_on_selector_all("#device_id option", "os => os.map(o => o.value)")
            assert devices == sorted({r[0] for r in truth.rows.values()})

            for f in ACME.numeric_fields:
                values = values_of(in_range, f.name)
                cells = {
                    stat: page.get_attribute(
                        f'#stats tr[data-column="{f.name}"] td[data-stat="{stat}"]', "data-value"
                    )
                    for stat in ("count", "median", "min", "max", "mean")
                }
                assert int(cells["count"] or -1) == len(values)
                assert float(cells["median"] or "nan") == statistics.median(values)
                assert float(cells["min"] or "nan") == min(values)
                assert float(cells["max"] or "nan") == max(values)
                assert float(cells["mean"] or "nan") == pytest.approx(
                    statistics.fmean(values), rel=1e-12
                )

            # 401 rows, 150 a page: the charts plot buckets sized to fit, on a time axis.
            seconds = (end - start).total_seconds()
            width = next(w for label, w in WIDTHS if seconds / w <= 360)
            label = next(label for label, w in WIDTHS if w == width)
            bucketed = api(
                base,
                f"/devices/{device}/readings?start={iso_z(start)}&end={iso_z(end)}&bucket={label}",
            )
            assert page.inner_text("#chart-mode").startswith(f"the range in buckets of {label}")
            for f in ACME.numeric_fields:
                chart = f'#charts svg[data-column="{f.name}"]'
                assert page.get_attribute(chart, "data-mode") == "buckets"
                means = [
                    b["stats"][f.name]["mean"]
                    for b in bucketed["buckets"]
                    if b["stats"][f.name]["count"]
                ]
                plotted = json.loads(page.get_attribute(f"{chart} polyline", "data-values") or "")
                assert plotted == means and len(means) > 1
                ticks = page.eval_on_selector_all(
                    f'{chart} text[data-label="tick"]', "ts => ts.map(t => t.dataset.time)"
                )
                assert len(ticks) == 3
                assert ticks[0].startswith(iso_z(start)[:19])
                assert ticks[-1].startswith(iso_z(end)[:19])

            # The dataset's category codes, as the API gives them.
            codes = api(base, "/datasets/acme_usage/categories")["categories"]
            for field, mapping in codes.items():
                shown = page.eval_on_selector_all(
                    f'#categories table[data-field="{field}"] tbody tr',
                    "rs => rs.map(r => [r.dataset.value, Number(r.dataset.code)])",
                )
                assert shown == [[v, c] for v, c in mapping.items()] and shown

            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert (tmp_path / "page.png").stat().st_size > 20_000
            if os.environ.get("IOTPIPE_UPDATE_SCREENSHOT"):
                shutil.copy(tmp_path / "page.png", SCREENSHOT)

            # Paging moves through the rows.
            assert page.locator("#rows tbody tr").count() == 150
            page.click("#next")
            page.wait_for_function(
                "document.querySelector('#page').textContent.startsWith('page 2')"
            )
            assert (
                page.locator("#rows tbody tr")
                .first.inner_text()
                .startswith(iso_z(in_range[150][1]))
            )

            # The whole range on one page: the charts plot every reading.
            page.goto(f"{base}/?{query}&limit=500")
            page.wait_for_selector("body[data-state=loaded]", timeout=30_000)
            for f in ACME.numeric_fields:
                chart = f'#charts svg[data-column="{f.name}"]'
                assert page.get_attribute(chart, "data-mode") == "rows"
                plotted = json.loads(page.get_attribute(f"{chart} polyline", "data-values") or "")
                assert plotted == values_of(in_range, f.name)
                points = (page.get_attribute(f"{chart} polyline", "points") or "").split()
                assert len(points) == len(plotted)

            # A bad range shows the API's error.
            page.goto(f"{base}/?device_id={device}&start=2024-02-01&end=2024-01-01")
            page.wait_for_selector("body[data-state=error]", timeout=30_000)
            assert "start" in page.inner_text("#error")
        finally:
            browser.close()


WIDTHS = [("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3600), ("6h", 21600), ("1d", 86400)]
