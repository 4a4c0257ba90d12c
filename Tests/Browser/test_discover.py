""""Find my server" beside the From address: the page asks the server to discover the
address's SMTP settings, shows what each source gave and what was verified, and offers
the proposal as one click that fills the form without saving.

Everything is real: the run's responder asks the run's nsd (Tests/Fixtures/dns), whose
srv.example.test SRV records name two ports that scripts/test reserved
(EMAILSETUP_TEST_DISCOVERY_SSL_PORT, _STARTTLS_PORT); the fill test runs aiosmtpd
servers there with the "discovery" certificate of the fixtures' test CA, which the
responder trusts (discovery_ca_file), and `POST /api/setup/email_discover/{address}`
probes them."""

import os
import ssl
import unittest

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, env, save_via_api, settings


class DiscoverySmtpServer:
    """An aiosmtpd server on 127.0.0.1:`port` with the test CA's "discovery" certificate,
    SSL/TLS from the first byte (`implicit`) or STARTTLS, offering AUTH PLAIN and LOGIN
    (it refuses every sign-in: discovery never sends credentials). Counts the EHLOs it
    answers, so the test can tell the endpoint really probed it."""

    def __init__(self, port, implicit):
        self.port, self.implicit, self.ehlos = port, implicit, []

    def __enter__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        certs = os.path.join(env().state_dir, "oauth")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.path.join(certs, "discovery.pem"), os.path.join(certs, "discovery.key"))
        server = self

        class Handler:
            async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
                server.ehlos.append(hostname)
                session.host_name = hostname
                return responses

        tls = {"ssl_context": context} if self.implicit else {"tls_context": context, "require_starttls": True}
        # Implicit TLS is TLS to aiosmtpd only after STARTTLS, hence auth_require_tls off there.
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, server_hostname="mail.srv.example.test",
                                     authenticator=lambda *args: AuthResult(success=False),
                                     auth_require_tls=not self.implicit, ready_timeout=10, **tls)
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def discovery_port(name):
    value = os.environ.get("EMAILSETUP_TEST_DISCOVERY_%s_PORT" % name)
    if not value:
        raise RuntimeError("EMAILSETUP_TEST_DISCOVERY_%s_PORT is unset: run the browser tests through scripts/test, "
                           "which reserves the ports srv.example.test's SRV records name" % name)
    return int(value)


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
        ssl_port, starttls_port = discovery_port("SSL"), discovery_port("STARTTLS")
        save_via_api({**BASELINE})
        before = settings()
        with DiscoverySmtpServer(ssl_port, implicit=True) as implicit, DiscoverySmtpServer(starttls_port, implicit=False) as starttls:
            self.open_page()
            self.set_value("from_address", "noreply@srv.example.test")
            self.click("discover-button")
            self.wait_until(lambda: self.driver.find_elements(By.ID, "discover-apply")
                            or "No SMTP server could be verified" in self.el("discover-result").text,
                            "discovery answered", timeout=30)
            result = self.el("discover-result")
            self.assertTrue(self.driver.find_elements(By.ID, "discover-apply"), "no proposal: " + result.text)
            # What the user reads: the proposal, the source it came from, what was verified.
            self.assertIn("mail.srv.example.test, port %d, SSL/TLS, sign-in Auto" % ssl_port, result.text)
            self.assertIn("found by the domain's SRV record", result.text)
            self.assertIn("TLS works with a certificate valid for mail.srv.example.test", result.text)
            self.assertIn("offers sign-in with LOGIN, PLAIN", result.text)
            result.find_element(By.CSS_SELECTOR, "details summary").click()
            sources = result.find_element(By.CSS_SELECTOR, ".discover-sources").text
            self.assertIn("SRV record — SRV _submissions._tcp.srv.example.test: mail.srv.example.test:%d" % ssl_port, sources)
            probed = result.find_element(By.CSS_SELECTOR, ".discover-candidates").text
            self.assertIn("mail.srv.example.test:%d SSL/TLS (SRV record): answers, certificate valid" % ssl_port, probed)
            self.assertIn("mail.srv.example.test:%d STARTTLS (SRV record): answers, certificate valid" % starttls_port, probed)
            self.assertTrue(implicit.ehlos and starttls.ehlos, "the endpoint probed both servers the SRV records name")

            self.click("discover-apply")
            self.assertEqual(self.el("smtp_host").get_attribute("value"), "mail.srv.example.test")
            self.assertEqual(self.el("smtp_port").get_attribute("value"), str(ssl_port))
            self.assertEqual(self.el("smtp_connection_type").get_attribute("value"), "SSL")
            self.assertEqual(self.el("smtp_tls_verify").get_attribute("value"), "Full")
            self.assertEqual(self.el("smtp_authentication_type").get_attribute("value"), "Auto")
            self.assertEqual(self.el("smtp_username").get_attribute("value"), "noreply@srv.example.test")
            self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes", "discovery must not save by itself")
            self.assertIn("Filled in from what was verified just now", self.el("save-status").text)
        after = settings()
        self.assertEqual(after.etag, before.etag, "discovery saved something")
        self.assertEqual(after.data["smtp_settings_version"], before.data["smtp_settings_version"])
        self.assertEqual(after.data["smtp_host"], BASELINE["smtp_host"])
        self.assertEqual(str(after.data["smtp_port"]), BASELINE["smtp_port"])

if __name__ == "__main__":
    unittest.main()
