"""The review page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) opens the URL `digits review` prints, answers
with the keyboard only, undoes one, and the answers are on disk as labelled data."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from review.answers import ANSWERS_FILE
from tests.conftest import REPO
from tests.review.conftest import write_night

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")


def _browser():
    missing = [path for path in CHROMIUM if not os.path.exists(path)]
    if missing:
        message = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMIUM[1]), options=options)


@pytest.fixture
def page(tmp_path):
    """`digits review` on a night of 6 inputs, and a browser on the URL it printed."""
    night = write_night(tmp_path)
    labels = tmp_path / "labels"
    browser = _browser()  # first: a missing Chromium leaves no server behind
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs.review", "--scores", night, "--labels", str(labels),
         "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline()).group(0)
        browser.get(url)
        yield browser, labels
    finally:
        browser.quit()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def _wait(browser, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: condition(b), message=what)


def _answered(browser) -> int:
    return int(browser.find_element("tag name", "body").get_attribute("data-answered") or -1)


def _item(browser) -> str:
    return browser.find_element("tag name", "body").get_attribute("data-item") or ""


def _press(browser, key: str, answered_after: int):
    from selenium.webdriver.common.action_chains import ActionChains

    before = _item(browser)
    ActionChains(browser).send_keys(key).perform()
    _wait(browser, lambda b: _answered(b) == answered_after, f"{key}: answered {answered_after}")
    _wait(browser, lambda b: _item(b) != before or answered_after == 6, f"{key}: next input")


def test_a_night_is_reviewed_with_the_keyboard_alone(page):
    browser, labels = page
    _wait(browser, lambda b: _item(b) != "", "the first unanswered input on screen")
    assert "0 of 6 answered" in browser.find_element("id", "progress").text
    # The night at a glance: the statuses, the drift line, a bar per night in the chart.
    assert "review" in browser.find_element("id", "statuses").text
    assert "no drift alarm" in browser.find_element("id", "drift").text
    assert len(browser.find_elements("css selector", "#history rect")) == 2 * 3
    # Both images are there: the input as scored and the 28x28 the model saw.
    width = "return document.getElementById(arguments[0]).naturalWidth"
    for image in ("original", "seen"):
        _wait(browser, lambda b, i=image: b.execute_script(width, i) > 0, f"{image} shown")
    assert browser.execute_script(width, "seen") == 28

    _press(browser, "7", 1)
    _press(browser, "n", 2)
    _press(browser, "u", 1)  # the not_a_digit answer taken back, its input shown again
    _press(browser, "2", 2)
    _press(browser, "s", 3)
    assert "3 of 6 answered" in browser.find_element("id", "progress").text

    log = [json.loads(line) for line in (labels / ANSWERS_FILE).read_text().splitlines()]
    undone = {e["undo"] for e in log if "undo" in e}
    live = [e for e in log if "answer" in e and e["id"] not in undone]
    assert [e["answer"] for e in live] == ["7", "2", "skip"]
    images = sorted(str(p.relative_to(labels)) for p in labels.rglob("*.png"))
    assert images == sorted(
        [f"7/{live[0]['input_sha256']}.png", f"2/{live[1]['input_sha256']}.png"]
    )
    assert not (labels / "not_a_digit").exists() or not any((labels / "not_a_digit").iterdir())
    assert Path(labels / "7" / f"{live[0]['input_sha256']}.png").stat().st_size > 0
