"""The HTML reports as a reader sees them: headless Chromium, offline, driven by selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; override
with ``HARMONI_CHROMIUM`` / ``HARMONI_CHROMEDRIVER``) and ``selenium`` (the ``test`` extra); skipped otherwise.
The driver path is given to selenium explicitly, so Selenium Manager never downloads anything.
Screenshots go to ``test-artifacts/`` at the repository root (gitignored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import EXACT_SPECS, REPO, lookup, shows

pytestmark = pytest.mark.browser

SPECS = EXACT_SPECS
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("HARMONI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("HARMONI_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (or set HARMONI_CHROMIUM)")
    if not CHROMEDRIVER.is_file():
        pytest.skip(f"no chromedriver at {CHROMEDRIVER}: apt-get install chromium-driver (or set HARMONI_CHROMEDRIVER)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def report_dirs(exact_result_dirs) -> dict[str, Path]:
    """Every exact-capable shipped spec, rendered (all formats); plus index.html over them."""
    from harmoni_bayes.reporting import write_index, write_report

    for d in exact_result_dirs.values():
        write_report(d, fmt="all")
    write_index(list(exact_result_dirs.values()), next(iter(exact_result_dirs.values())).parent / "index.html")
    return exact_result_dirs


def open_page(driver, path: Path) -> list[dict]:
    """Load ``path``; return the console messages logged while loading."""
    driver.get_log("browser")  # drop anything left from a previous page
    driver.get(path.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    return driver.get_log("browser")


def screenshot(driver, name: str) -> Path:
    """A full-page screenshot in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 40, 12000))
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


@pytest.mark.parametrize("name", [p.stem for p in SPECS])
def test_report_in_headless_chromium(driver, report_dirs, name):
    from selenium.webdriver.common.by import By

    d = report_dirs[name]
    logs = open_page(driver, d / "report.html")
    severe = [entry for entry in logs if entry.get("level") == "SEVERE"]
    assert not severe, f"console errors: {severe}"

    summary = json.loads((d / "summary.json").read_text())
    spans = driver.find_elements(By.CSS_SELECTOR, "#headline .num")
    assert spans, "no numbers in the headline"
    answer = driver.find_element(By.CSS_SELECTOR, "#headline .answer")
    assert answer.is_displayed() and answer.find_elements(By.CSS_SELECTOR, ".num")
    for el in spans:
        ref = tuple(el.get_attribute(f"data-{k}") for k in ("section", "name", "stat"))
        value = lookup(summary, ref)
        assert float(el.get_attribute("data-value")) == value
        assert shows(el.text, value), (el.text, value)

    images = driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.src.slice(0, 26), complete: i.complete,"
        " w: i.naturalWidth, h: i.naturalHeight}))"
    )
    assert len(images) >= 2
    for img in images:
        assert img["src"] == "data:image/svg+xml;base64,"
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img

    # nothing on the page was fetched from anywhere but the page itself
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if r.startswith(("http:", "https:"))] == []

    shot = screenshot(driver, f"report_{name}")
    assert shot.stat().st_size > 10_000


def test_index_in_headless_chromium(driver, report_dirs):
    from selenium.webdriver.common.by import By

    index = next(iter(report_dirs.values())).parent / "index.html"
    logs = open_page(driver, index)
    assert not [entry for entry in logs if entry.get("level") == "SEVERE"]
    links = driver.find_elements(By.CSS_SELECTOR, "section.report h2 a")
    assert len(links) == len(report_dirs)
    for a in links:
        href = a.get_attribute("href")
        assert href.startswith("file://") and href.endswith("/report.html")
        assert Path(href.removeprefix("file://")).exists()
    assert driver.find_elements(By.CSS_SELECTOR, "section.report .answer .num")
    screenshot(driver, "reports_index")
