"""Send test email and Check connection from the page, against real SMTP servers
started here on 127.0.0.1: the email arrives, a refused connection is explained
with the server's hint, a hanging server can be cancelled, and an untrusted
certificate can be trusted in one click. Needs POST email_test and email_check."""

import tempfile
import unittest
import uuid

from selenium.webdriver.common.by import By

from support import (BASELINE, BrowserTestCase, SilentServer, SmtpSink, free_port, save_via_api,
                     self_signed_context, settings)


def relay(port, **extra):
    return {**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(port), "smtp_connection_type": "None",
            "smtp_authentication_type": "None", "smtp_tls_verify": "Full", **extra}


class ProbeTests(BrowserTestCase):

    def result(self, timeout=60):
        self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#probe-result .result"),
                        "a result appeared", timeout=timeout)
        return self.driver.find_element(By.CSS_SELECTOR, "#probe-result .result")

    def send_test_to(self, address):
        self.set_value("test_address", address)
        return self.run_probe("test-button")

    def test_test_email_arrives(self):
        with SmtpSink() as sink:
            save_via_api(relay(sink.port, from_address="setup-test@example.com"))
            self.open_page()
            recipient = f"admin-{uuid.uuid4().hex[:6]}@example.net"
            result = self.send_test_to(recipient)
            self.assertIn("ok", result.get_attribute("class").split(), result.text)
            self.assertIn(recipient, result.text)
            message = sink.wait_for_message()
            self.assertEqual(message["to"], [recipient])
            self.assertEqual(message["from"], "setup-test@example.com")
            # The conversation is there, folded.
            transcript = self.driver.find_elements(By.CSS_SELECTOR, "#probe-result details.transcript")
            if transcript:
                self.assertIsNone(transcript[0].get_attribute("open"))

    def test_check_connection_succeeds(self):
        with SmtpSink() as sink:
            save_via_api(relay(sink.port))
            self.open_page()
            result = self.run_probe("check-button")
            self.assertIn("ok", result.get_attribute("class").split(), result.text)
            self.assertIn("connection works", result.text)
            self.assertEqual(sink.messages, [], "a check must send nothing")

    def test_refused_connection_shows_the_hint_first(self):
        closed = free_port()  # nothing listens here
        save_via_api(relay(closed))
        self.open_page()
        self.record_requests()
        result = self.send_test_to("someone@example.net")
        self.assertIn("bad", result.get_attribute("class").split(), result.text)
        hint = result.find_element(By.CSS_SELECTOR, ".hint").text
        self.assertTrue(hint, "no hint shown")
        answers = self.driver.execute_script("return window.__answers")
        answer = [a for a in answers if "email_test" in a["url"]][-1]
        self.assertIn(answer["status"], (502, 504))
        import json
        diagnosis = json.loads(answer["body"])["diagnosis"]
        self.assertEqual(hint.rstrip("."), (diagnosis["hint"][0].upper() + diagnosis["hint"][1:]).rstrip("."))
        # The hint comes before the facts; the facts name the stage and the kind in plain words.
        texts = [e.tag_name for e in result.find_elements(By.XPATH, "./*")]
        self.assertLess(texts.index("p"), texts.index("dl"))
        facts = result.find_element(By.CSS_SELECTOR, "dl.facts").text
        self.assertIn("connecting", facts)
        self.assertIn("connection refused", facts)
        # Not the API's codes (issue 14).
        self.assertNotIn("(connect)", facts)
        self.assertNotIn("(refused)", facts)

    def test_invalid_test_address_is_refused_in_the_page(self):
        save_via_api(relay(free_port()))
        self.open_page()
        self.record_requests()
        self.set_value("test_address", "not an address")
        self.click("test-button")
        self.assertEqual(self.el("test_address").get_attribute("aria-invalid"), "true")
        self.assertIn("test_address-error", self.el("test_address").get_attribute("aria-describedby"))
        self.assertEqual(self.requests("email_test"), [])

    def test_progress_shows_elapsed_seconds_and_cancel_stops_waiting(self):
        with SilentServer() as silent:
            save_via_api(relay(silent.port, smtp_command_timeout="5"))
            self.open_page()
            self.wait_until(lambda: self.el("check-button").is_enabled(), "the button is enabled")
            for attempt in range(2):
                self.click("check-button")
                self.wait_until(lambda: self.el("probe-progress").is_displayed()
                                or self.driver.find_elements(By.CSS_SELECTOR, "#probe-result .rate-limited"),
                                "the progress showed")
                if self.el("probe-progress").is_displayed():
                    break
                self.wait_until(lambda: self.el("check-button").is_enabled(), "the rate limit passed", timeout=70)
            self.wait_until(lambda: " 1 s" in self.el("probe-progress-text").text, "a second was counted", timeout=5)
            self.assertIn("Checking the connection", self.el("probe-progress-text").text)
            self.click("probe-cancel")
            result = self.result(timeout=5)
            self.assertIn("cancelled", result.text)
            self.assertFalse(self.el("probe-progress").is_displayed())
            self.assertTrue(self.el("check-button").is_enabled())

    def test_untrusted_certificate_can_be_trusted_in_one_click(self):
        with tempfile.TemporaryDirectory() as tmp:
            context, fingerprint = self_signed_context(tmp)
            with SmtpSink(tls_context=context, require_starttls=True) as sink:
                save_via_api(relay(sink.port, smtp_connection_type="STARTTLS"))
                self.open_page()
                result = self.run_probe("check-button")
                self.assertIn("bad", result.get_attribute("class").split(), result.text)
                certificate = result.find_element(By.CSS_SELECTOR, ".certificate")
                self.assertIn("sink.test", certificate.text)
                shown = certificate.find_element(By.CSS_SELECTOR, ".fingerprint").text.replace(":", "")
                self.assertEqual(shown, fingerprint)
                certificate.find_element(By.CSS_SELECTOR, ".trust-button").click()
                self.assertEqual(self.el("smtp_tls_verify").get_attribute("value"), "Pinned")
                self.assertEqual(self.el("smtp_tls_pin_sha256").get_attribute("value"), fingerprint)
                self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes", "trusting must not save by itself")
                self.assertEqual(settings().data["smtp_tls_verify"], "Full")
                self.assertTrue(self.save_and_wait().startswith("Saved"))
                result = self.run_probe("check-button")
                self.assertIn("ok", result.get_attribute("class").split(), "the pinned check failed: " + result.text)


if __name__ == "__main__":
    unittest.main()
