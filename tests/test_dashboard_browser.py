"""The dashboard in a real browser: `streamlit run dashboard` (headless, a free local port,
started once for this module) on the fixture DB, driven by Debian's Chromium through selenium
and Debian's chromium-driver (nothing downloads a browser or a driver). Screenshots are saved
under the pytest tmp folder (or $POOLREPRO_SCREENSHOTS) and their folder is printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomllib
from dashboard_data import build

from dashboard import screenshot as shot

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("selenium", reason="pip install poolrepro[test] (selenium)")
pytestmark = pytest.mark.skipif(
    not all(shot.browser_paths()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    url, tasks = build(d)
    shots = Path(os.environ.get("POOLREPRO_SCREENSHOTS") or d / "screenshots")
    with shot.serve(url, tasks, optuna=f"sqlite:///{d / 'optuna.db'}",
                    log=d / "streamlit.log") as base, shot.chromium(d / "profile") as driver:
        yield {"base": base, "driver": driver, "shots": shots}


def test_server_binds_to_localhost_by_default():
    cfg = tomllib.loads((REPO / "dashboard" / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "localhost"
    assert cfg["browser"]["gatherUsageStats"] is False


def test_overview_then_claim_page_in_chromium(app, capsys):
    d, base = app["driver"], app["base"]
    d.get(base + "/")
    wait = WebDriverWait(d, 60)
    row_xpath = "//table[@id='overview-table']//tr[.//a[normalize-space()='{}']]"
    row = wait.until(lambda drv: drv.find_elements(By.XPATH, row_xpath.format("demo/delta")))[0]
    assert row.find_element(By.CSS_SELECTOR, ".pr-badge").text == "reproduced"
    error_row = d.find_element(By.XPATH, row_xpath.format("demo/error"))
    assert error_row.find_element(By.CSS_SELECTOR, ".pr-badge").text == "error"
    shot.wait_rendered(d)  # the claims-per-paper chart
    assert shot.full_page(d, app["shots"] / "overview.png").stat().st_size > 20_000

    d.find_element(By.XPATH, row_xpath.format("demo/delta")).find_element(
        By.LINK_TEXT, "demo/delta").click()
    wait.until(lambda drv: "/claim?" in drv.current_url)
    assert "claim=demo%2Fdelta" in d.current_url
    wait.until(lambda drv: any(h.text == "SoftPool beats max pooling by a point"
                               for h in drv.find_elements(By.TAG_NAME, "h1")))
    # the seeds of each arm, the paired difference and the training curves are drawn
    wait.until(lambda drv: sum(a > 10_000 for a in shot.charts_drawn(drv)) >= 3)
    text = d.find_element(By.TAG_NAME, "body").text
    assert "reproduced" in text and "Δ +3.167" in text
    shot.wait_rendered(d)
    assert shot.full_page(d, app["shots"] / "claim.png").stat().st_size > 20_000
    with capsys.disabled():
        print(f"\ndashboard screenshots: {app['shots']}")
