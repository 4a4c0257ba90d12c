"""History of the settings in the page: versions listed newest first with who
and what changed, restore of an earlier one (with If-Match), and the last
version known to work. Needs GET email_history and POST …/restore."""

import unittest
import uuid

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, SmtpSink, api, save_via_api, settings


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
        alert = self.driver.switch_to.alert
        self.assertIn(f"Restore version {old_version}", alert.text)
        alert.accept()
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


if __name__ == "__main__":
    unittest.main()
