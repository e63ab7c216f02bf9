"""One headless Chromium session logged in as one user, with bounded waits on the page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chromium import Chromium

#: Longest wait for anything a page should show (a frame through server, Redis and a worker).
WAIT = 10
WINDOW = (1200, 760)
#: Headless, as root in a container, and quiet: no first-run pages, no calls home.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    f"--window-size={WINDOW[0]},{WINDOW[1]}", "--lang=en-GB",
]


def start_driver(chromium: Chromium) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # The driver's path is given, so Selenium never looks for (or downloads) one itself.
    driver = webdriver.Chrome(options=options, service=Service(chromium.driver))
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


class Browser:
    def __init__(self, driver: webdriver.Chrome, base_url: str, shots: Path, name: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots
        self.name = name

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def log_in(self, username: str, password: str) -> None:
        self.open("/login/")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        user = self.wait_for(lambda: self.find_all("#current-user"), f"logged in as {username}")
        assert user[0].text == username

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """The first truthy value of ``condition()``; fails saying ``what`` never happened."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda _: condition())
        except TimeoutException:
            raise AssertionError(f"{self.name}: {what} not seen within {timeout} s on "
                                 f"{self.driver.current_url}\n{self.page_text()}") from None

    def socket_state(self) -> str | None:
        badges = self.find_all("#socket-status")
        return badges[0].get_attribute("data-state") if badges else None

    def wait_socket(self, state: str, timeout: float = WAIT) -> None:
        """Until the page's WebSocket is ``open`` (connected) or ``closed`` (reconnecting)."""
        self.wait_for(lambda: self.socket_state() == state, f"socket {state}", timeout)

    def page_text(self) -> str:
        try:
            return self.find("body").text
        except Exception as exc:  # the page may be mid-navigation; the message is for people
            return f"<page text unavailable: {exc}>"

    def screenshot(self, step: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{step}-{self.name}.png"
        self.driver.save_screenshot(str(path))
        return path
