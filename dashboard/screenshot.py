"""Screenshots of the dashboard in headless Chromium: the README's overview image and the
browser test's artifacts use the same helpers::

    python -m dashboard.screenshot --out dashboard/figures/dashboard-overview.png
    python -m dashboard.screenshot --page 'claim?claim=allconv/c10/all_cnn_c-vs-model_c' \\
        --out /tmp/claim.png --db sqlite:///out/results.db

:func:`serve` starts ``streamlit run dashboard`` (headless, a free local port) from the
repository root exactly as a user would; :func:`chromium` drives Debian's ``chromium`` with
its ``chromium-driver`` through selenium (never a downloaded browser or driver).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--hide-scrollbars")


def browser_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) from PATH, or None where missing."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(db: str, tasks: str | Path = "tasks.toml", optuna: str | None = None,
          log: Path | None = None, timeout: float = 90) -> Iterator[str]:
    """``streamlit run dashboard`` on a free port; yields its base URL, stops it on exit."""
    port = free_port()
    log = log or Path(tempfile.mkstemp(prefix="dashboard-", suffix=".log")[1])
    args = ["--db", db, "--tasks", str(tasks)] + (["--optuna", optuna] if optuna else [])
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard", "--server.headless", "true",
           "--server.port", str(port), "--", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOLREPRO_")}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                if time.monotonic() > end:
                    raise TimeoutError(f"streamlit did not come up:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def chromium(profile: Path, width: int = 1440, height: int = 1000):
    """A headless Chromium driven by selenium (Debian's browser and driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    if not (browser and driver_path):
        raise RuntimeError("needs chromium and chromium-driver: "
                           "apt-get install chromium chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver
    opts = Options()
    opts.binary_location = browser
    for flag in (*CHROME_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def charts_drawn(driver) -> list[int]:
    """Pixel areas of the drawn Vega charts (canvas or SVG) on the page."""
    return driver.execute_script(
        "return [...document.querySelectorAll('.vega-embed')].map(e => {"
        "  const c = e.querySelector('canvas, svg'); if (!c) return 0;"
        "  const r = c.getBoundingClientRect(); return Math.round(r.width * r.height); });")


def wait_rendered(driver, timeout: float = 60, settle: float = 1.5) -> None:
    """Until Streamlit stops running the script and every chart has drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    def done(drv) -> bool:  # every page has a title; the status widget shows while running
        ready = drv.execute_script(
            "return !document.querySelector('[data-testid=stStatusWidget]') && "
            "!!document.querySelector('[data-testid=stMain] h1')")
        return ready and all(a > 0 for a in charts_drawn(drv))

    time.sleep(settle)
    WebDriverWait(driver, timeout).until(done)
    time.sleep(settle)


def full_page(driver, path: Path, width: int = 1440, max_height: int = 5000) -> Path:
    """Screenshot the page at its content's height (at most ``max_height`` pixels)."""
    h = driver.execute_script(
        "const m = document.querySelector('[data-testid=stMain]') || document.body;"
        "return Math.max(m.scrollHeight, document.body.scrollHeight);")
    size = driver.get_window_size()
    driver.set_window_size(width, max(800, min(int(h) + 80, max_height)))
    time.sleep(1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dashboard.screenshot", epilog=__doc__,
        description="Screenshot a dashboard page in headless Chromium.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="sqlite:///results.db", help="results DB URL")
    ap.add_argument("--tasks", default="tasks.toml", help="claims file")
    ap.add_argument("--page", default="", help="URL path and query, e.g. 'claim?claim=ID'")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--max-height", type=int, default=5000, help="crop taller pages")
    args = ap.parse_args(argv)
    def from_repo(path: Path) -> str:  # the server runs in the repository root
        path = path.resolve()
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    db = args.db if "://" in args.db else f"sqlite:///{args.db}"
    if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        db = f"sqlite:///{from_repo(Path.cwd() / db[len('sqlite:///'):])}"
    tasks = from_repo(Path(args.tasks))
    with tempfile.TemporaryDirectory() as tmp, serve(db, tasks) as base, \
            chromium(Path(tmp) / "profile", args.width) as driver:
        driver.get(f"{base}/{args.page}")
        wait_rendered(driver)
        path = full_page(driver, Path(args.out), args.width, args.max_height)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
