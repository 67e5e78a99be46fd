"""Headless Chromium through Selenium for the browser tests.

Selenium's calls block, so each scenario runs in a thread while the test's
reactor serves the site; :func:`in_reactor` lets the scenario ask the store
something in between.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.internet import defer, reactor, threads

from tests.support import require_peer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Set to a directory to keep the screenshots the scenarios take (docs/screenshots/).
SCREENSHOT_DIR = os.environ.get("PORTAUM_WEB_SCREENSHOTS", "")


def require_chromium() -> None:
    try:
        import selenium  # noqa: F401
        have_selenium = True
    except ImportError:
        have_selenium = False
    require_peer("selenium (Python package)", have_selenium, "pip install selenium")
    require_peer("Chromium", os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
                 "apt-get install chromium chromium-driver")


def start_browser(width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="portaum-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     "--autoplay-policy=no-user-gesture-required",
                     "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    driver.portaum_profile = profile
    return driver


def stop_browser(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.portaum_profile, True)


def in_reactor(coroutine_function, *args):
    """From the scenario thread: run an async function in the reactor, wait for it."""
    return threads.blockingCallFromThread(
        reactor, lambda: defer.ensureDeferred(coroutine_function(*args)))


def screenshot(driver, name: str) -> None:
    if SCREENSHOT_DIR:
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(SCREENSHOT_DIR, f"{name}.png"))


def wait(driver, condition, timeout: float = 15.0):
    """Wait for ``condition``; on timeout the page's status line and console say why."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        status = driver.execute_script(
            "const s = document.getElementById('status'); return s && !s.hidden ? s.textContent : ''")
        raise AssertionError(f"waited {timeout} s in vain; status: {status!r}; console: "
                             f"{[e['message'] for e in driver.get_log('browser')]}") from None


def visible(driver, css: str, timeout: float = 15.0):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)


def clickable(driver, css: str, timeout: float = 15.0):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    return wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, css)), timeout)


def status_text(driver, contains: str, timeout: float = 15.0) -> str:
    from selenium.webdriver.common.by import By

    def check(d):
        box = d.find_element(By.ID, "status")
        return box.text if box.is_displayed() and contains in box.text else False
    return wait(driver, check, timeout)


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
            # refused sign-ins and the signed-out session probe are expected answers
            and "status of 401" not in entry["message"] and "status of 403" not in entry["message"]]
