"""Reports of recorded real runs rendered in Debian's headless Chromium
(selenium + chromium-driver): every lane, the fault span and the delay
table are in the DOM, the console has no errors, nothing is fetched from
the network, the event filter works, and the 5-node 60 s page is under
2 MB. Render time is printed and recorded as a JUnit property (a speed is
measured, not asserted, here). Screenshots go to artifacts/report/.

The browser: Debian's chromium and chromium-driver (make deps installs
them); on Ubuntu, where Chromium is a snap only, Google Chrome and a
chromedriver on PATH or in $CHROMEWEBDRIVER, as GitHub's Ubuntu images have."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from recorded_runs import RUNS, recorded
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import Select

from harness.report import stats_page, write_report
from harness.report.model import build

MAX_BYTES = 2 * 1024 * 1024


def _find(names: tuple[str, ...], extra_dirs: tuple[str, ...] = ()) -> str | None:
    """The first of `names` on PATH or in one of `extra_dirs`."""
    for d in extra_dirs:
        for n in names:
            if d and (Path(d) / n).is_file():
                return str(Path(d) / n)
    return next((p for p in map(shutil.which, names) if p), None)


def browser_and_driver() -> tuple[str, str] | None:
    binary = _find(("chromium", "google-chrome", "google-chrome-stable"))
    driver = _find(("chromedriver",), (os.environ.get("CHROMEWEBDRIVER", ""),))
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    found = browser_and_driver()
    if found is None:
        # a missing browser is a broken install, not something to skip over
        pytest.fail("no Chromium/Chrome with its chromedriver: `make deps` installs "
                    "chromium and chromium-driver on Debian; on Ubuntu install Google "
                    "Chrome and set CHROMEWEBDRIVER")
    binary, driver_path = found
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1400,1800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()  # stops the driver and the browser it started


@pytest.mark.parametrize("run", RUNS)
def test_report_renders_in_chromium(run: str, browser: webdriver.Chrome, tmp_path: Path,
                                    report_artifacts: Path,
                                    record_property: pytest.RecordProperty) -> None:
    tl, info = recorded(run)
    t = time.monotonic()
    files = write_report(tl, info, tmp_path)
    build_s = time.monotonic() - t
    size = files.html.stat().st_size
    assert size < MAX_BYTES, f"{run}: page is {size} bytes"
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(files.html.as_uri())
    render_s = browser.execute_script(
        "var t = performance.getEntriesByType('navigation')[0];"
        "return (t.loadEventEnd - t.startTime) / 1000;")
    record_property("render_s", f"{render_s:.3f}")
    browser.save_screenshot(str(report_artifacts / f"{run}.png"))
    shutil.copy(files.html, report_artifacts / f"{run}.html")
    print(f"\n{run}: {size / 1024:.0f} KiB, built in {build_s:.2f} s, "
          f"rendered in {render_s:.3f} s")

    # every lane's label, and the fault's, is text in the chart
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#chart svg text'))"
        ".map(function(t){return t.textContent;});")
    joined = "\n".join(texts)
    for lane in files.data.lanes:
        assert lane.name in texts, f"{run}: lane {lane.name!r} not in the chart"
    for fault in files.data.faults:
        assert fault.label.strip() in joined, f"{run}: fault span {fault.label!r} not labelled"
    assert files.data.faults, f"{run}: the recorded run has a fault"
    assert browser.find_elements("css selector", "#topology svg")
    delay_rows = browser.find_elements("css selector", "#delays tbody tr")
    assert len(delay_rows) == len(files.data.delays) >= 2
    assert "fault -> UNHEALTHY" in delay_rows[0].text
    assert info.verdict.split(":")[0] in browser.find_element("id", "verdict").text

    # no console errors, and nothing fetched: every resource is the file itself
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{run}: console errors {errors}"
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function(r){return r.name;});")
    assert fetched == [], f"{run}: the page fetched {fetched}"
    refs = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]'))"
        ".map(function(e){return e.getAttribute('src') || e.getAttribute('href');});")
    assert not [r for r in refs if "//" in r], f"{run}: external references {refs}"


def test_event_table_filters_by_node_and_kind(browser: webdriver.Chrome, tmp_path: Path) -> None:
    tl, info = recorded("n3-passed")
    files = write_report(tl, info, tmp_path)
    browser.get(files.html.as_uri())
    total = len(files.data.rows)

    def visible() -> list[tuple[str, str]]:
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('#events tbody tr'))"
            ".filter(function(r){return r.style.display !== 'none';})"
            ".map(function(r){return [r.dataset.node, r.dataset.kind];});")

    assert len(visible()) == total
    Select(browser.find_element("id", "f-node")).select_by_value("n2")
    rows = visible()
    assert rows and {n for n, _ in rows} == {"n2"}
    assert len(rows) == sum(1 for r in files.data.rows if r.node == "n2")
    Select(browser.find_element("id", "f-kind")).select_by_value("flags")
    rows = visible()
    assert rows and {tuple(r) for r in rows} == {("n2", "flags")}
    assert browser.find_element("id", "f-count").text.startswith(f"{len(rows)} of {total}")


def test_stats_page_renders_in_chromium(browser: webdriver.Chrome, tmp_path: Path,
                                        report_artifacts: Path) -> None:
    """The `harness stats` page, from the delays the recorded runs measured."""
    samples: dict[str, list[float]] = {"detection": [], "takeover": [], "outage": []}
    for run in RUNS:
        tl, info = recorded(run)
        for d in build(tl, info).delays:
            key = ("detection" if d.what.startswith("fault") else
                   "takeover" if d.what.startswith("UNHEALTHY") else "outage")
            samples[key].append(d.seconds or 0.0)
    page = stats_page.write(tmp_path / "stats.html", "recorded runs", {"native": samples},
                            3.0, "summary")
    browser.get_log("browser")
    browser.get(page.as_uri())
    browser.save_screenshot(str(report_artifacts / "stats.png"))
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#chart svg text'))"
        ".map(function(t){return t.textContent;});")
    assert "theory: uniform over 3 s" in texts
    assert {"detection (s)", "takeover (s)", "outage (s)"} <= set(texts)
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
