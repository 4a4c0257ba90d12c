"""Live checking while typing (issue 15, items 3 and 4): the page asks the
server's validate endpoint (the same rules as a save, saving nothing) after a
pause, shows its errors, warnings and repairs, and splits `host:port` and URLs
typed in the server field into the right fields with a note. The shared edge
cases (Tests/Fixtures/settings/edge-cases.json) run through the page here and
through the validator in the Swift suite, so page and save agree."""

import json
import os
import unittest

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, env, save_via_api, settings

SELECTS = ("smtp_authentication_type", "smtp_tls_verify", "smtp_connection_type", "oauth_provider", "oauth_grant")


class LiveCheckingTests(BrowserTestCase):

    def setUp(self):
        save_via_api(BASELINE)
        self.open_page()

    # -- helpers

    def settle(self):
        """Leaves the field being typed in and waits until the live check answered the current values."""
        self.driver.execute_script("document.activeElement && document.activeElement.blur()")
        self.wait_until(lambda: self.driver.execute_script(
            "return document.getElementById('settings-form').dataset.live") == "done", "the live check answered")

    def shown(self, kind):
        """Fields showing a message of `kind` (error, warning, fix) next to them."""
        return sorted(e.get_attribute("id")[: -len(kind) - 1]
                      for e in self.driver.find_elements(By.CSS_SELECTOR, f"#settings-form .field-{kind}")
                      if e.is_displayed())

    def saves(self):
        return [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]

    def fix_of(self, field):
        found = self.driver.find_elements(By.ID, field + "-fix")
        return found[0].text if found else None

    # -- splitting misplaced input

    def test_host_and_port_are_split_with_a_note(self):
        self.set_value("smtp_host", "smtp.example.com:2525")
        self.settle()
        self.assert_values(smtp_host="smtp.example.com", smtp_port="2525")
        self.assertIn("smtp.example.com:2525", self.fix_of("smtp_host") or "")
        self.assertIsNone(self.error_of("smtp_host"))

    def test_bracketed_ipv6_and_port_are_split(self):
        self.set_value("smtp_host", "[2001:db8::25]:2525")
        self.settle()
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "2525")
        self.assertIn("2001:db8::25", self.el("smtp_host").get_attribute("value"))
        self.assertIsNone(self.error_of("smtp_host"))

    def test_urls_become_server_port_and_security(self):
        self.set_value("smtp_host", "https://smtp.example.com/login")
        self.settle()
        self.assert_values(smtp_host="smtp.example.com")
        self.assertTrue(self.fix_of("smtp_host"))
        self.set_value("smtp_host", "smtps://mail.example.net")
        self.settle()
        self.assert_values(smtp_host="mail.example.net", smtp_port="465")
        self.assertIn(self.el("smtp_connection_type").get_attribute("value"), ("SSL", "TLS"))

    def test_a_repair_waits_until_the_field_is_left(self):
        self.set_value("smtp_host", "smtp.example.com:587")
        # Still typing: the value is not rewritten under the cursor.
        self.wait_until(lambda: self.driver.execute_script(
            "return document.getElementById('settings-form').dataset.live") == "done", "the live check answered")
        self.assertEqual(self.el("smtp_host").get_attribute("value"), "smtp.example.com:587")
        self.settle()
        self.assert_values(smtp_host="smtp.example.com", smtp_port="587")

    def test_save_applies_a_pending_repair_and_keeps_its_note(self):
        self.record_requests()
        self.set_value("smtp_host", "smtp.example.org:2525")
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status)
        stored = settings().data
        self.assertEqual((stored["smtp_host"], stored["smtp_port"]), ("smtp.example.org", "2525"))
        self.assertIn("smtp.example.org:2525", self.fix_of("smtp_host") or "")

    # -- warnings before saving, in the page's words

    def test_warnings_appear_before_saving(self):
        self.record_requests()
        self.set_value("smtp_connection_type", "SSL")
        self.set_value("smtp_port", "587")
        self.settle()
        self.assertIn("587", self.warning_of("smtp_connection_type") or self.warning_of("smtp_port") or "")
        self.set_value("smtp_connection_type", "STARTTLS")
        self.set_value("smtp_port", "465")
        self.settle()
        self.assertIn("465", self.warning_of("smtp_connection_type") or self.warning_of("smtp_port") or "")

        self.set_value("smtp_port", "587")
        self.set_value("smtp_authentication_type", "Login")
        self.set_value("smtp_username", "someone")
        self.settle()
        text = " ".join(e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "#settings-form .field-warning"))
        self.assertIn("password", text.lower(), "no warning about the missing password")
        self.assertIn("LOGIN", text)
        self.assertNotIn("Authentication Login", text, "internal names in the warning")
        # A new password typed: the warning goes.
        self.set_value("smtp_password", "typed-password")
        self.settle()
        self.assertIsNone(self.warning_of("smtp_password"))

        # Sign-in without encryption.
        self.set_value("smtp_connection_type", "None")
        self.set_value("smtp_port", "25")
        self.settle()
        self.assertTrue(self.shown("warning"), "no warning for a sign-in over an unencrypted connection")
        self.assertEqual(self.saves(), [], "checking saved something")

    def test_errors_show_only_for_changed_fields(self):
        self.set_value("smtp_port", "70000")
        self.settle()
        self.assertIn("65535", self.error_of("smtp_port") or "")
        self.assertEqual(self.shown("error"), ["smtp_port"])

    # -- the shared edge cases

    def test_edge_cases_through_the_page(self):
        path = os.path.join(env().root, "Tests", "Fixtures", "settings", "edge-cases.json")
        with open(path) as f:
            cases = [c for c in json.load(f) if not c.get("api_only")]
        # The cases assume nothing stored (defaults for absent fields), as on a first run.
        from test_form_states import forget_all_settings
        forget_all_settings()
        self.addCleanup(save_via_api, BASELINE)
        ran, not_typeable = 0, []
        for case in cases:
            data = case["data"]
            unknown = [k for k in data if not self.driver.find_elements(By.ID, k) or k in ("smtp_password", "oauth_client_secret")]
            if unknown:
                not_typeable.append((case["name"], unknown))
                continue
            with self.subTest(case=case["name"]):
                self.open_page()
                for key in SELECTS:
                    if key in data:
                        self.force_value(key, data[key])
                for key, value in data.items():
                    if key not in SELECTS:
                        self.force_value(key, value)
                self.settle()
                fixes = sorted(case.get("fixes", []))
                self.assertEqual(self.shown("fix"), fixes, "fixes")
                # A repaired field no longer has its error.
                # Errors show on the fields typed in (and those a sign-in method or check makes
                # required); a field nobody touched shows its error only after Save.
                expected = set(case.get("errors", [])) - set(fixes)
                shown = set(self.shown("error"))
                typed = set(data) | {"smtp_username"}
                self.assertEqual(shown & typed, expected & typed, "errors on typed fields")
                self.assertLessEqual(shown, expected, "errors the server does not give")
                if not fixes:
                    self.assertEqual(self.shown("warning"), sorted(case.get("warnings", [])), "warnings")
                ran += 1
        print(f"edge cases through the page: {ran} ran; not typeable in the page: {not_typeable}")
        self.assertGreaterEqual(ran, len(cases) // 2, f"most edge cases could not be typed: {not_typeable}")

    def force_value(self, key, value):
        """Types a value; a select gets an unknown value as the server would see it."""
        element = self.el(key)
        if element.tag_name == "select":
            self.driver.execute_script("""
                const s = arguments[0], v = arguments[1];
                if (![...s.options].some(o => o.value === v)) s.append(new Option(v, v));
                s.value = v; s.dispatchEvent(new Event('change', {bubbles: true}));""", element, str(value))
        elif len(str(value)) > 500 or not element.is_displayed():
            # Pasted, as a user would (or into a field this combination hides).
            self.driver.execute_script("""
                arguments[0].value = arguments[1];
                arguments[0].dispatchEvent(new Event('input', {bubbles: true}));""", element, str(value))
        else:
            self.set_value(key, str(value))

    def assert_values(self, **expected):
        for key, value in expected.items():
            self.assertEqual(self.el(key).get_attribute("value"), value, key)


if __name__ == "__main__":
    unittest.main()
