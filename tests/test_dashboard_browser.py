"""The dashboard in a real browser: `streamlit run dashboard` (headless, a free local port,
started once for this module) on the fixture DB, driven by Debian's Chromium through selenium
and Debian's chromium-driver (nothing downloads a browser or a driver). Screenshots are saved
under the pytest tmp folder (or $POOLREPRO_SCREENSHOTS) and their paths printed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tomllib
from dashboard_data import build

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="pip install poolrepro[test] (selenium)")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--window-size=1440,1000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not come up:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    url, tasks = build(d)
    shots = Path(os.environ.get("POOLREPRO_SCREENSHOTS") or d / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = d / "streamlit.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOLREPRO_")}
    # `streamlit run dashboard` exactly as the README says, from the repository root; the
    # folder's .streamlit/config.toml binds it to localhost.
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard", "--server.headless", "true",
           "--server.port", str(port), "--", "--db", url, "--tasks", str(tasks),
           "--optuna", f"sqlite:///{d / 'optuna.db'}"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        wait_healthy(base, proc, log)
        opts = Options()
        opts.binary_location = CHROMIUM
        for flag in CHROME_FLAGS + [f"--user-data-dir={d / 'chrome-profile'}"]:
            opts.add_argument(flag)
        os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        try:
            yield {"base": base, "driver": driver, "shots": shots, "log": log}
        finally:
            driver.quit()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def screenshot(driver, path: Path) -> Path:
    """The whole page: grow the window to the content's height first."""
    h = driver.execute_script(
        "const m = document.querySelector('[data-testid=stMain]') || document.body;"
        "return Math.max(m.scrollHeight, document.body.scrollHeight);")
    driver.set_window_size(1440, max(1000, min(int(h) + 80, 5000)))
    time.sleep(1.0)
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1000)
    return path


def charts_drawn(driver) -> list[int]:
    """Pixel areas of the drawn Vega charts (canvas or SVG) on the page."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.vega-embed')].map(e => {"
        "  const c = e.querySelector('canvas, svg'); if (!c) return 0;"
        "  const r = c.getBoundingClientRect(); return Math.round(r.width * r.height); });")


def test_server_binds_to_localhost_by_default():
    cfg = tomllib.loads((REPO / "dashboard" / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "localhost"
    assert cfg["browser"]["gatherUsageStats"] is False


def test_overview_then_claim_page_in_chromium(app, capsys):
    d, base = app["driver"], app["base"]
    d.get(base + "/")
    wait = WebDriverWait(d, 60)
    row_xpath = "//table[@id='overview-table']//tr[.//a[normalize-space()='demo/delta']]"
    row = wait.until(lambda drv: drv.find_elements(By.XPATH, row_xpath))[0]
    badge = row.find_element(By.CSS_SELECTOR, ".pr-badge")
    assert badge.text == "reproduced"
    error_row = d.find_element(
        By.XPATH, "//table[@id='overview-table']//tr[.//a[normalize-space()='demo/error']]")
    assert error_row.find_element(By.CSS_SELECTOR, ".pr-badge").text == "error"
    wait.until(lambda drv: any(a > 0 for a in charts_drawn(drv)))  # claims per paper
    shot = screenshot(d, app["shots"] / "overview.png")
    assert shot.stat().st_size > 20_000

    row = d.find_element(By.XPATH, row_xpath)
    row.find_element(By.LINK_TEXT, "demo/delta").click()
    wait.until(lambda drv: "/claim?" in drv.current_url)
    assert "claim=demo%2Fdelta" in d.current_url
    wait.until(lambda drv: any(h.text == "SoftPool beats max pooling by a point"
                               for h in drv.find_elements(By.TAG_NAME, "h1")))
    # the seeds plot of each arm, the paired difference and the training curves
    wait.until(lambda drv: sum(a > 10_000 for a in charts_drawn(drv)) >= 3)
    text = d.find_element(By.TAG_NAME, "body").text
    assert "reproduced" in text and "Δ +3.167" in text
    shot = screenshot(d, app["shots"] / "claim.png")
    assert shot.stat().st_size > 20_000
    with capsys.disabled():
        print(f"\ndashboard screenshots: {app['shots']}")
