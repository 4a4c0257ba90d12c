"""History of the settings in the page: versions listed newest first with who
and what changed (old → new, a password only as "changed"), the tests and
checks of each version, restore of an earlier one in the page's own dialog
with the difference to the current settings (with If-Match), the last version
known to work, and no scroll box inside the page at phone width.
Needs GET email_history and POST …/restore."""

import unittest
import uuid

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from support import BASELINE, BrowserTestCase, SmtpSink, api, free_port, save_via_api, set_viewport, settings


class HistoryTests(BrowserTestCase):

    def test_history_lists_versions_and_restores_one(self):
        first = f"first-{uuid.uuid4().hex[:6]}.example.com"
        save_via_api({**BASELINE, "smtp_host": first})
        old_version = settings().data["smtp_settings_version"]
        self.open_page()
        self.set_value("smtp_host", "second.example.com")
        self.assertTrue(self.save_and_wait().startswith("Saved"))
        self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, f'[data-restore="{old_version}"]'),
                        "the history lists the earlier version")
        items = self.driver.find_elements(By.CSS_SELECTOR, ".history-item")
        self.assertIn("current", items[0].text, "the newest version is not first")
        self.assertIn("SMTP server", items[0].text, "the changed field is not named")

        button = self.driver.find_element(By.CSS_SELECTOR, f'[data-restore="{old_version}"]')
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        # The page's own dialog, not window.confirm: the difference to the current settings, Cancel in focus.
        dialog = self.el("restore-dialog")
        self.wait_until(lambda: dialog.get_attribute("open") is not None, "the restore dialog opened", timeout=5)
        self.assertIn(f"Restore version {old_version}?", dialog.text)
        diff = dialog.find_element(By.CSS_SELECTOR, '.restore-diff [data-field="smtp_host"]').text
        self.assertIn("second.example.com", diff)
        self.assertIn(first, diff)
        self.assertLess(diff.index("second.example.com"), diff.index(first), "current → version, in that order")
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "restore-cancel")
        # Esc closes it, restores nothing, and gives focus back to the button.
        self.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.wait_until(lambda: dialog.get_attribute("open") is None, "Esc closed the dialog", timeout=5)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("data-restore"), str(old_version))
        self.assertEqual(settings().data["smtp_host"], "second.example.com")

        button.click()
        self.wait_until(lambda: dialog.get_attribute("open") is not None, "the restore dialog opened again", timeout=5)
        self.el("restore-confirm").click()
        self.wait_until(lambda: self.el("smtp_host").get_attribute("value") == first, "the form shows the restored host")
        self.assertEqual(settings().data["smtp_host"], first)
        self.assertEqual(self.el("dirty-indicator").text, "All changes saved")
        self.wait_until(lambda: f"restored from version {old_version}" in self.el("history-body").text,
                        "the history shows the restore")

    def test_last_known_good_version_is_shown_after_a_good_test_email(self):
        with SmtpSink() as sink:
            save_via_api({**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port),
                          "smtp_connection_type": "None"})
            version = settings().data["smtp_settings_version"]
            self.open_page()
            self.set_value("test_address", "lkg@example.net")
            result = self.run_probe("test-button")
            self.assertIn("ok", result.get_attribute("class").split(), result.text)
            sink.wait_for_message()
            self.wait_until(lambda: f"Last known good: version {version}" in self.el("history-lkg").text,
                            "the last known good version is shown")
            self.assertIn(f"Last known good: version {version}", self.el("version-line").text)
            self.assertEqual(str(api("GET", "email_history").data.get("last_known_good_version")), str(version))

    def test_history_shows_old_and_new_values_and_a_password_only_as_changed(self):
        host = f"before-{uuid.uuid4().hex[:6]}.example.com"
        save_via_api({**BASELINE, "smtp_host": host, "smtp_port": "587"})
        self.open_page()
        self.fill({"smtp_authentication_type": "Plain", "smtp_username": "history-user", "smtp_port": "2525"})
        secret = "pw-" + uuid.uuid4().hex
        self.set_value("smtp_password", secret)
        self.assertTrue(self.save_and_wait().startswith("Saved"))
        version = settings().data["smtp_settings_version"]
        self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, f'.history-item[data-version="{version}"] [data-field]'),
                        "the newest version lists its changes")
        item = self.driver.find_element(By.CSS_SELECTOR, f'.history-item[data-version="{version}"]')
        port = item.find_element(By.CSS_SELECTOR, '[data-field="smtp_port"]')
        self.assertEqual(port.find_element(By.CSS_SELECTOR, ".change-old").text, "587")
        self.assertEqual(port.find_element(By.CSS_SELECTOR, ".change-new").text, "2525")
        self.assertIn("Port", port.text)
        self.assertIn("history-user", item.find_element(By.CSS_SELECTOR, '[data-field="smtp_username"]').text)
        self.assertIn("changed", item.find_element(By.CSS_SELECTOR, '[data-field="smtp_password"]').text)
        self.assertNotIn(secret, self.el("history-body").text)
        self.assertNotIn(secret, api("GET", "email_history").body.__repr__())
        self.assertNotIn("v1:", api("GET", "email_history").body.__repr__())

    def test_failed_and_successful_tests_appear_in_the_timeline(self):
        closed = free_port()
        save_via_api({**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(closed), "smtp_connection_type": "None"})
        version = settings().data["smtp_settings_version"]
        self.open_page()
        self.set_value("test_address", "timeline@example.net")
        result = self.run_probe("test-button")
        self.assertIn("bad", result.get_attribute("class").split(), result.text)
        selector = f'.history-item[data-version="{version}"] .history-event'
        self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, selector), "the failed test is in the history")
        event = self.driver.find_element(By.CSS_SELECTOR, selector)
        self.assertIn("bad", event.get_attribute("class").split())
        self.assertIn("Test email to timeline@example.net failed", event.text)
        self.assertIn("connection refused", event.text)
        with SmtpSink() as sink:
            save_via_api({**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port), "smtp_connection_type": "None"})
            good = settings().data["smtp_settings_version"]
            self.open_page()
            self.assertIn("ok", self.run_probe("check-button").get_attribute("class").split())
            ok = f'.history-item[data-version="{good}"] .history-event.ok'
            self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, ok), "the successful check is in the history")
            self.assertIn("Connection check succeeded", self.driver.find_element(By.CSS_SELECTOR, ok).text)
        # The earlier version keeps its failure.
        self.assertTrue(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def test_phone_width_has_no_scroll_box_inside_the_page(self):
        for n in range(8):
            save_via_api({**BASELINE, "smtp_host": f"phone-{n}-{uuid.uuid4().hex[:4]}.example.com"})
        try:
            set_viewport(self.driver, 390, 844, True)
            self.open_page()
            self.wait_until(lambda: len(self.driver.find_elements(By.CSS_SELECTOR, ".history-item")) >= 8, "the history loaded")
            overflow, scroll, client = self.driver.execute_script(
                "const l = document.querySelector('.history-list');"
                "return [getComputedStyle(l).overflowY, l.scrollHeight, l.clientHeight]")
            self.assertEqual(overflow, "visible")
            self.assertLessEqual(scroll, client + 1, "the history scrolls inside the page")
            wide, inner = self.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(wide, inner)
        finally:
            set_viewport(self.driver, 1280, 900, False)


if __name__ == "__main__":
    unittest.main()
