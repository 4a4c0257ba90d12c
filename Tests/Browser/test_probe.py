"""Send test email and Check connection from the page, against real SMTP servers
started here on 127.0.0.1: the email arrives, a refused connection is explained
with the server's hint, a hanging server can be cancelled, and an untrusted
certificate can be trusted in one click. Needs POST email_test and email_check."""

import json
import os
import subprocess
import tempfile
import unittest
import uuid

from selenium.webdriver.common.by import By

from support import (BASELINE, BrowserTestCase, SilentServer, SmtpSink, api, env, free_port, save_via_api,
                     self_signed_context, set_viewport, settings)


def relay(port, **extra):
    return {**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(port), "smtp_connection_type": "None",
            "smtp_authentication_type": "None", "smtp_tls_verify": "Full", **extra}


def final_answer(answer):
    """The status and JSON of an answer the page received: a plain one, or the last
    line of a streamed one (application/x-ndjson)."""
    lines = [json.loads(line) for line in answer["body"].splitlines() if line.strip()]
    if lines and "http_status" in lines[-1]:
        return lines[-1]["http_status"], lines[-1]["response"]
    return answer["status"], json.loads(answer["body"])


class HostileServer:
    """Tests/Fixtures/smtp/hostile_server.py in one of its modes, on 127.0.0.1."""

    def __init__(self, mode):
        script = os.path.join(env().root, "Tests", "Fixtures", "smtp", "hostile_server.py")
        self.process = subprocess.Popen(["/usr/bin/python3", script, "--mode", mode], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline().split()
        assert ready[:1] == ["READY"], f"hostile_server.py did not start: {ready}"
        self.port = int(ready[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()  # the script exits when stdin closes
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


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
        status, body = final_answer([a for a in answers if "email_test" in a["url"]][-1])
        self.assertIn(status, (502, 504))
        diagnosis = body["diagnosis"]
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

    # -- issue 15: progress names the step and its limit

    def test_progress_names_the_step_and_the_limit_it_waits_for(self):
        with SilentServer() as silent:
            save_via_api(relay(silent.port, smtp_command_timeout="30"))
            self.open_page()
            self.click("check-button")
            self.wait_until(lambda: self.el("probe-step").is_displayed()
                            and self.el("probe-step").get_attribute("data-step") == "greeting",
                            "the page names the greeting as the current step", timeout=10)
            step = self.el("probe-step").text
            self.assertIn("Waiting for the greeting", step)
            self.assertIn("up to 30 s", step)
            self.assertIn("Checking the connection", self.el("probe-progress-text").text)
            self.click("probe-cancel")
            self.assertIn("cancelled", self.result(timeout=5).text)
            self.assertFalse(self.el("probe-progress").is_displayed())

    # -- issue 15: no result ever widens the page

    def assert_no_sideways_scrolling(self, what):
        for details in self.driver.find_elements(By.CSS_SELECTOR, "#probe-result details"):
            self.driver.execute_script("arguments[0].open = true", details)
        for width, height in ((1280, 900), (390, 844)):
            set_viewport(self.driver, width, height, width < 500)
            self.driver.execute_script("document.getElementById('probe-result').scrollIntoView()")
            wide, inner = self.driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(wide, inner, f"{what} makes the page {wide} px wide at {width} px")
        set_viewport(self.driver, 1280, 900, False)

    def test_no_result_widens_the_page(self):
        # Success, with the transcript opened.
        with SmtpSink() as sink:
            save_via_api(relay(sink.port))
            self.open_page()
            self.assertIn("ok", self.run_probe("check-button").get_attribute("class").split())
            self.assert_no_sideways_scrolling("a successful check")

        # TLS failure: the 64-digit fingerprint in the headline and the certificate card.
        with tempfile.TemporaryDirectory() as tmp:
            context, _ = self_signed_context(tmp, name="a-rather-long-host-name-for-a-certificate.mail.example.test")
            with SmtpSink(tls_context=context, require_starttls=True) as sink:
                save_via_api(relay(sink.port, smtp_connection_type="STARTTLS"))
                self.open_page()
                result = self.run_probe("check-button")
                self.assertTrue(result.find_elements(By.CSS_SELECTOR, ".certificate"), result.text)
                self.assert_no_sideways_scrolling("a TLS failure")

        # Sign-in failure with the conversation opened; a 300-line EHLO answer in it.
        with HostileServer("no_starttls") as hostile:
            save_via_api(relay(hostile.port, smtp_authentication_type="Plain",
                               smtp_username="a-user-name-long-enough-to-matter@a-long-domain.example.com"))
            self.open_page()
            result = self.run_probe("check-button")
            self.assertIn("signing in", result.text)
            self.assert_no_sideways_scrolling("a sign-in failure")
        with HostileServer("banner_554_long") as hostile:
            save_via_api(relay(hostile.port))
            self.open_page()
            self.assertIn("bad", self.run_probe("check-button").get_attribute("class").split())
            self.assert_no_sideways_scrolling("a 300-byte server line")

        # Timeout.
        with SilentServer() as silent:
            save_via_api(relay(silent.port, smtp_command_timeout="2"))
            self.open_page()
            result = self.run_probe("check-button")
            self.assertIn("no answer in time", result.text)
            self.assert_no_sideways_scrolling("a timeout")

        # OAuth: nobody signed in, so getting the token fails (stage oauth).
        api("POST", "oauth/sign_out")
        port = os.environ.get("EMAILSETUP_TEST_OAUTH_SMTP_PORT")
        self.assertTrue(port, "EMAILSETUP_TEST_OAUTH_SMTP_PORT is unset (scripts/test sets it)")
        save_via_api(relay(int(port), smtp_connection_type="STARTTLS", smtp_tls_verify="None",
                           smtp_authentication_type="XOAUTH2", smtp_username="sender@example.test",
                           oauth_provider="Microsoft", oauth_grant="authorization_code",
                           oauth_tenant="contoso-test-tenant", oauth_client_id="emailsetup-test"))
        self.open_page()
        result = self.run_probe("check-button")
        self.assertIn("OAuth", result.text)
        self.assert_no_sideways_scrolling("an OAuth failure")


if __name__ == "__main__":
    unittest.main()
