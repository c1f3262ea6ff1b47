"""Headless Debian chromium through selenium, with the driver's path given (no Selenium Manager download)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser():
    """A headless chromium; fails naming what is missing (CI's .ci/run installs `chromium chromium-driver`)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists() and not shutil.which(Path(p).name)]
    assert not missing, (f"{' and '.join(missing)} missing: `apt-get install -y chromium chromium-driver` "
                         "(.ci/run does it in CI)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-extensions", "--no-first-run", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def ranking(driver) -> list[list[str]]:
    """The ranking table's rows as the browser shows them (cell texts), read in one script call: the page
    rebuilds the table on every refresh, so elements found one by one could go stale in between."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#ranking tbody tr'))"
        ".map(function (tr) { return Array.from(tr.cells).map(function (td) { return td.textContent; }); });")
