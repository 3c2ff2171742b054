"""`stillmoving ui` in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
generate a video of the embedded world, move the motion-scale slider, and see the page show the new video.
A screenshot is saved under test-artifacts/ (or $STILLMOVING_TEST_ARTIFACTS)."""

import shutil

import pytest
from ui_server import ARTIFACTS, start_server

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER and CHROMIUM),
    reason="needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; scripts/setup.sh does it as root)",
)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (in the lock)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def video_source(driver) -> str:
    videos = driver.find_elements("css selector", "#video video")
    return videos[0].get_attribute("src") if videos else ""


def test_generate_then_move_the_motion_slider(tmp_path, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    page, _, url = start_server(tmp_path / "out", [])
    try:
        browser.get(url)
        # a guard against a hang, not a measured time; gradio re-renders elements as results arrive, so an element
        # found a moment ago can be gone when read (a stale reference): the waits read them afresh
        wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: d.find_elements("css selector", "#generate"))
        browser.find_element("css selector", "#generate").click()
        wait.until(lambda d: "_motion0_" in video_source(d))
        first = video_source(browser)
        wait.until(lambda d: "made" in d.find_element("css selector", "#generate-status").text)

        slider = browser.find_element("css selector", "#motion-scale input[type=range]")
        ActionChains(browser).click_and_hold(slider).move_by_offset(slider.size["width"] // 2, 0).release().perform()
        wait.until(lambda d: video_source(d) not in ("", first) and "_motion1_" in video_source(d))
        command = lambda d: d.find_element("css selector", "#command").text  # noqa: E731
        wait.until(lambda d: "--motion-scale 1" in command(d) and "--motion-adapter" in command(d))
        wait.until(
            lambda d: d.execute_script(
                "const v = document.querySelector('#video video');return v && v.readyState >= 2 && v.videoWidth > 0"
            )
        )  # it decodes
        browser.execute_script("window.scrollTo(0, 0)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "ui-generate.png"))
        print(f"screenshot: {ARTIFACTS / 'ui-generate.png'}")
    finally:
        page.close()
