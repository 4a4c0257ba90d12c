""""Find my server" beside the From address: the page asks the server to discover the
address's SMTP settings, shows what each source gave and what was verified, and offers
the proposal as one click that fills the form without saving.

The run's responder asks the system's DNS, where no test domain has records, so the
real endpoint is exercised on the "nothing verified" path; the fill path replays a
recorded answer of the endpoint (the shape DiscoveryEndToEndTests proves against real
servers) through a wrapped window.fetch."""

import json
import unittest

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, save_via_api, settings

ANSWER = {
    "status": "success",
    "data": {
        "address": "noreply@srv.example.test", "domain": "srv.example.test", "elapsed_ms": 42,
        "sources": [
            {"source": "srv", "tried": "SRV _submissions._tcp.srv.example.test",
             "found": ["mail.srv.example.test:465 SSL/TLS (priority 0, weight 1)"], "error": None},
            {"source": "autoconfig", "tried": "https://autoconfig.srv.example.test/mail/config-v1.1.xml",
             "found": [], "error": None},
        ],
        "candidates": [
            {"host": "mail.srv.example.test", "port": 465, "smtp_connection_type": "SSL",
             "smtp_authentication_type": "Auto", "smtp_username": "noreply@srv.example.test", "source": "srv",
             "verified": {"greeting": True, "tls": True, "certificate_valid": True,
                          "auth_mechanisms": ["PLAIN", "LOGIN"], "error": None}},
        ],
        "proposal": {"smtp_host": "mail.srv.example.test", "smtp_port": 465, "smtp_connection_type": "SSL",
                     "smtp_authentication_type": "Auto", "smtp_tls_verify": "Full",
                     "smtp_username": "noreply@srv.example.test"},
        "explanation": "mail.srv.example.test:465 SSL/TLS works, found by the domain's SRV record.",
    },
}


class DiscoverTests(BrowserTestCase):

    def test_nothing_verified_is_explained_and_the_form_is_untouched(self):
        save_via_api({**BASELINE})
        self.open_page()
        self.set_value("from_address", "noreply@nothing.invalid")
        host_before = self.el("smtp_host").get_attribute("value")
        self.click("discover-button")
        result = self.el("discover-result")
        self.wait_until(lambda: "No SMTP server could be verified" in result.text, "the explanation is shown", timeout=30)
        self.assertIn("nothing.invalid", result.text)
        self.assertEqual(result.find_elements(By.ID, "discover-apply"), [], "no proposal, no button")
        self.assertEqual(self.el("smtp_host").get_attribute("value"), host_before)
        self.assertEqual(self.el("discover-button").text, "Find my server")

    def test_a_bad_address_is_refused_before_asking(self):
        self.open_page()
        self.record_requests()
        self.set_value("from_address", "not an address")
        self.click("discover-button")
        self.wait_until(lambda: self.el("discover-result").text != "", "the error is shown")
        self.assertEqual(self.requests("email_discover"), [])

    def test_use_these_settings_fills_the_form_without_saving(self):
        save_via_api({**BASELINE})
        self.open_page()
        self.driver.execute_script("""
            const answer = arguments[0];
            const original = window.fetch;
            window.fetch = async function (url, init) {
              if (String(url).includes('email_discover/')) {
                return new Response(JSON.stringify(answer), {status: 200, headers: {'Content-Type': 'application/json'}});
              }
              return original.apply(this, arguments);
            };""", ANSWER)
        self.set_value("from_address", "noreply@srv.example.test")
        self.click("discover-button")
        self.wait_until(lambda: self.driver.find_elements(By.ID, "discover-apply"), "the proposal is offered")
        result = self.el("discover-result")
        self.assertIn("mail.srv.example.test, port 465, SSL/TLS, sign-in Auto", result.text)
        self.click("discover-apply")
        self.assertEqual(self.el("smtp_host").get_attribute("value"), "mail.srv.example.test")
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "465")
        self.assertEqual(self.el("smtp_connection_type").get_attribute("value"), "SSL")
        self.assertEqual(self.el("smtp_username").get_attribute("value"), "noreply@srv.example.test")
        self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes", "discovery must not save by itself")
        self.assertNotEqual(settings().data["smtp_host"], "mail.srv.example.test")


if __name__ == "__main__":
    unittest.main()
