"""The chart page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright),
against `iotpipe serve` on 127.0.0.1 with seeded data: the stats table and the charts show the
right numbers, and paging moves through the rows."""

from __future__ import annotations

import json
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


def test_page_shows_the_right_stats_and_charts(served: tuple[str, SampleTruth]) -> None:
    from playwright.sync_api import sync_playwright

    base, truth = served
    assert truth.rows is not None
    device = "dev-00001"
    mine = sorted((r for r in truth.rows.values() if r[0] == device), key=lambda r: r[1])
    start, end = mine[0][1], mine[400][1]
    in_range = [r for r in mine if start <= r[1] <= end]
    spec = json.loads(urllib.request.urlopen(f"{base}/openapi.json", timeout=10).read())
    assert spec["openapi"] == "3.1.0"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/?device_id={device}&start={iso_z(start)}&end={iso_z(end)}&limit=150")
            page.wait_for_selector("body[data-state=loaded]", timeout=30_000)
            assert page.inner_text("#summary").startswith(f"{device}: {len(in_range)} rows")
            for f in ACME.numeric_fields:
                values = [
                    r[2 + FIELDS.index(f.name)]
                    for r in in_range
                    if r[2 + FIELDS.index(f.name)] is not None
                ]
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
                # The chart plots this page's 150 rows: one point per non-null value.
                on_page = [
                    r[2 + FIELDS.index(f.name)]
                    for r in in_range[:150]
                    if r[2 + FIELDS.index(f.name)] is not None
                ]
                chart = f'#charts svg[data-column="{f.name}"]'
                assert int(page.get_attribute(chart, "data-count") or -1) == len(on_page)
                plotted: list[Any] = json.loads(
                    page.get_attribute(f"{chart} polyline", "data-values") or "[]"
                )
                assert plotted == on_page
                points = (page.get_attribute(f"{chart} polyline", "points") or "").split()
                assert len(points) == len(on_page)
            first_rows = page.locator("#rows tbody tr").count()
            assert first_rows == 150
            page.click("#next")
            page.wait_for_function(
                "document.querySelector('#page').textContent.startsWith('page 2')"
            )
            assert (
                page.locator("#rows tbody tr")
                .first.inner_text()
                .startswith(iso_z(in_range[150][1]))
            )
            # A bad range shows the API's error.
            page.goto(f"{base}/?device_id={device}&start=2024-02-01&end=2024-01-01")
            page.wait_for_selector("body[data-state=error]", timeout=30_000)
            assert "start" in page.inner_text("#error")
        finally:
            browser.close()
