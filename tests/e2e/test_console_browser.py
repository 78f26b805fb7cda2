"""The console and /docs in a real headless Chromium (Debian's packages), driven by Selenium.

Screenshots go to ``tests/artifacts/`` (ignored by git). The browser is
installed with apt-get when missing; only outside CI may a failed install skip.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import cli_token

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def _install_chromium() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env, check=True,
                       capture_output=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"could not install chromium and chromium-driver: {exc}")
        pytest.skip(f"chromium is not installed and could not be: {exc}")


@pytest.fixture(scope="session")
def chromium() -> None:
    _install_chromium()


@pytest.fixture
def browser_factory(chromium: None, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def make(*extra: str) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, *extra, f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        drivers.append(driver)
        return driver

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download anything
    yield make
    for driver in drivers:
        driver.quit()


def wait(driver: Any, condition: Callable[[Any], Any], seconds: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def test_console_signs_in_shows_live_events_an_entity_history_and_a_session(
        sqlite_gunicorn: tuple[str, dict[str, str]], browser_factory: Callable[..., Any]) -> None:
    from selenium.webdriver.common.by import By

    base, env = sqlite_gunicorn
    token = cli_token(env, "admin", "user:console")
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{base}/api/orchestration"
    session_key = f"sess-{uuid.uuid4().hex[:6]}"
    assert requests.post(f"{api}/sessions", json={"agent_id": "agent:planner", "session_key": session_key},
                         headers=headers, timeout=10).status_code == 201

    driver = browser_factory(LOOPBACK_ONLY)
    driver.get(f"{base}/console")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait(driver, lambda d: text_of(d, "feed-status") == "live")
    assert token not in driver.current_url
    assert driver.execute_script("return sessionStorage.getItem('orchestration.token')") == token

    created = requests.post(f"{api}/tasks", json={"task_code": "UI-1", "title": "Seen live"},
                            headers={**headers, "X-Session-Key": session_key}, timeout=10)
    assert created.status_code == 201
    requests.patch(f"{api}/tasks/UI-1", json={"status": "in_progress", "progress": 30}, headers=headers, timeout=10)
    row = wait(driver, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#feed-rows tr")
                                  if "orchestration.task.progress_updated" in r.text])[0]
    assert "task UI-1" in row.text
    driver.refresh()  # a reload signs in from sessionStorage; the overview now counts the new events
    wait(driver, lambda d: "orchestration.task.created" in text_of(d, "by-type"))
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline-chart rect.bar"))
    wait(driver, lambda d: text_of(d, "feed-status") == "live")
    for progress in (45, 60):
        requests.patch(f"{api}/tasks/UI-1", json={"progress": progress}, headers=headers, timeout=10)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed-rows tr")) == 2)
    screenshot(driver, "console-feed")

    driver.get(f"{base}/console#/entity/task/UI-1")
    wait(driver, lambda d: text_of(d, "entity-chain").startswith("valid"))
    history = text_of(driver, "entity-rows")
    assert "orchestration.task.status_changed" in history and '"pending" → "in_progress"' in history
    # the input has whole seconds: an instant a little ahead includes the last event
    driver.execute_script("document.getElementById('at').value = "
                          "new Date(Date.now() + 2000).toISOString().slice(0, 19)")
    driver.find_element(By.CSS_SELECTOR, "#at-form button").click()
    wait(driver, lambda d: '"progress": 60' in text_of(d, "entity-state"))
    screenshot(driver, "console-entity")

    driver.get(f"{base}/console#/session/{session_key}")
    wait(driver, lambda d: "orchestration.task.created" in text_of(d, "session-rows"))
    touched = text_of(driver, "session-entities")
    assert "task UI-1" in touched and f"session {session_key}" in touched
    screenshot(driver, "console-session")

    driver.get(f"{base}/console#/rules")
    wait(driver, lambda d: d.find_element(By.ID, "rules").is_displayed())
    screenshot(driver, "console-rules")


def test_docs_render_every_operation_with_the_network_beyond_loopback_blocked(
        sqlite_gunicorn: tuple[str, dict[str, str]], browser_factory: Callable[..., Any]) -> None:
    from selenium.webdriver.common.by import By

    base, _env = sqlite_gunicorn
    html = requests.get(f"{base}/docs", timeout=10).text
    assert "cdn" not in html.lower() and "/docs/assets/swagger-ui-bundle.js" in html
    driver = browser_factory(LOOPBACK_ONLY)
    driver.get(f"{base}/docs")
    operations = len(requests.get(f"{base}/openapi.json", timeout=10).json()["paths"])
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations)
    assert "/api/orchestration/events/stream" in driver.page_source
    screenshot(driver, "docs-offline")

