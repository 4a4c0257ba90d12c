"""Screenshots of the page at desktop (1280×900) and phone (360×780) size,
written to docs/screenshots/ for the README. They show a realistic state:
settings saved, a check result on screen."""

import os
import time
import unittest

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, SilentServer, SmtpSink, env, free_port, save_via_api, set_viewport

SIZES = {"desktop": (1280, 900, False), "phone": (360, 780, True)}


class ScreenshotTests(BrowserTestCase):

    # -- the settings form's states (issue 15, P2): first run, live checking, conflict, phone focus

    def shoot(self, name, element_id=None):
        folder = os.path.join(env().root, "docs", "screenshots")
        os.makedirs(folder, exist_ok=True)
        if element_id:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", self.el(element_id))
        path = os.path.join(folder, name + ".png")
        self.driver.save_screenshot(path)
        self.assertGreater(os.path.getsize(path), 10_000, path)

    def live_done(self):
        self.driver.execute_script("document.activeElement && document.activeElement.blur()")
        self.wait_until(lambda: self.driver.execute_script(
            "return document.getElementById('settings-form').dataset.live") == "done", "the live check answered")

    def test_form_state_screenshots(self):
        from test_form_states import forget_all_settings
        set_viewport(self.driver, 1280, 900, False)
        forget_all_settings()
        self.open_page()
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.shoot("form-first-run")

        save_via_api(BASELINE)
        self.open_page()
        self.set_value("smtp_host", "smtp.example.com:465")
        self.set_value("smtp_connection_type", "STARTTLS")
        self.set_value("smtp_authentication_type", "Login")
        self.set_value("smtp_username", "someone@example.com")
        self.live_done()
        self.shoot("form-live-checking", "smtp_host")

        self.open_page()
        self.set_value("smtp_host", "mine.example.com")
        save_via_api({**BASELINE, "smtp_host": "theirs.example.com", "from_address": "theirs@example.com"})
        self.click("save")
        self.wait_until(lambda: self.el("conflict").is_displayed(), "the conflict panel appeared")
        self.shoot("form-conflict")

        save_via_api(BASELINE)
        set_viewport(self.driver, 390, 844, True)
        self.open_page()
        self.set_value("smtp_authentication_type", "Auto")
        self.el("smtp_host").click()
        self.shoot("form-phone-focus", "smtp_host")
        set_viewport(self.driver, 1280, 900, False)

    def test_screenshots(self):
        folder = os.path.join(env().root, "docs", "screenshots")
        os.makedirs(folder, exist_ok=True)
        with SmtpSink() as sink:
            save_via_api({**BASELINE, "from_address": "noreply@example.com", "smtp_host": "127.0.0.1",
                          "smtp_port": str(sink.port), "smtp_connection_type": "None"})
            for name, (width, height, mobile) in SIZES.items():
                set_viewport(self.driver, width, height, mobile)
                self.open_page()
                # No horizontal scrolling at this width.
                overflow = self.driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                self.assertLessEqual(overflow, 0, f"the page scrolls sideways at {width} px")
                if name == "desktop":
                    self.set_value("test_address", "admin@example.com")
                    self.run_probe("test-button")
                    # The history refreshes after the check; give it a moment to show the new state.
                    time.sleep(1.5)
                    self.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
                path = os.path.join(folder, name + ".png")
                self.driver.save_screenshot(path)
                self.assertGreater(os.path.getsize(path), 10_000, path)
        set_viewport(self.driver, 1280, 900, False)



class ResultProgressHistoryScreenshots(BrowserTestCase):
    """Issue 15 items 1, 7, 8: the current step with its limit, a failure with its
    transcript open at phone width, the history with old → new values and tests,
    and the restore dialog."""

    def shoot(self, name):
        folder = os.path.join(env().root, "docs", "screenshots")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + ".png")
        self.driver.save_screenshot(path)
        self.assertGreater(os.path.getsize(path), 10_000, path)

    def test_screenshots_of_progress_results_and_history(self):
        relay = {**BASELINE, "from_address": "noreply@example.com", "smtp_host": "127.0.0.1", "smtp_connection_type": "None"}
        try:
            with SilentServer() as silent:
                save_via_api({**relay, "smtp_port": str(silent.port), "smtp_command_timeout": "30"})
                set_viewport(self.driver, 1280, 900, False)
                self.open_page()
                self.click("check-button")
                self.wait_until(lambda: self.el("probe-step").is_displayed() and " 2 s so far" in self.el("probe-step").text,
                                "the step has been shown for two seconds", timeout=15)
                self.driver.execute_script("document.getElementById('probe-progress').scrollIntoView({block: 'center'})")
                self.shoot("probe-progress")
                self.click("probe-cancel")

            # A failure with the conversation open, at phone width.
            save_via_api({**relay, "smtp_port": str(free_port())})
            set_viewport(self.driver, 390, 844, True)
            self.open_page()
            self.set_value("test_address", "admin@example.com")
            result = self.run_probe("test-button")
            self.driver.execute_script("for (const d of document.querySelectorAll('#probe-result details')) d.open = true;"
                                       "document.activeElement.blur(); arguments[0].scrollIntoView({block: 'start'})", result)
            self.shoot("probe-failure-phone")

            # The history: values per version, the failed test, then the restore dialog.
            with SmtpSink() as sink:
                save_via_api({**relay, "smtp_port": str(sink.port), "smtp_connect_timeout": "5"})
                set_viewport(self.driver, 1280, 900, False)
                self.open_page()
                self.run_probe("check-button")
                time.sleep(1.5)
                self.driver.execute_script("document.activeElement.blur(); document.getElementById('history-title').scrollIntoView({block: 'start'})")
                self.shoot("history")
                button = self.driver.find_elements(By.CSS_SELECTOR, "[data-restore]")[0]
                self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
                button.click()
                self.wait_until(lambda: self.el("restore-dialog").get_attribute("open") is not None, "the dialog opened", timeout=5)
                self.shoot("history-restore-dialog")
                self.el("restore-cancel").click()
        finally:
            set_viewport(self.driver, 1280, 900, False)


if __name__ == "__main__":
    unittest.main()
