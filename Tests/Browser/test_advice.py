"""Verified advice on the page: a check whose connection security does not fit the
port makes the server try the usual ports; the answer's suggestion is offered as one
click, "Use these settings", which fills Port and Connection security without saving.
The responder probes the real well-known ports, so this binds 465 (waiting while
another run holds it)."""

import tempfile
import time
import unittest

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, SmtpSink, save_via_api, self_signed_context, settings


class ImplicitTLSSink:
    """An aiosmtpd server speaking TLS from the first byte on `port`, retried for up to
    30 s while the port is taken."""

    def __init__(self, context, port):
        self.context, self.port = context, port

    def __enter__(self):
        from aiosmtpd.controller import Controller

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                return "250 accepted"

        deadline = time.time() + 30
        while True:
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ssl_context=self.context,
                                         server_hostname="sink.test", ready_timeout=10)
            try:
                self.controller.start()
                return self
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def __exit__(self, *exc):
        self.controller.stop()


class AdviceTests(BrowserTestCase):

    def test_use_these_settings_fills_port_and_security_without_saving(self):
        with tempfile.TemporaryDirectory() as tmp:
            context, fingerprint = self_signed_context(tmp)
            with SmtpSink(tls_context=context, require_starttls=True) as sink, ImplicitTLSSink(context, 465):
                # SSL/TLS on a port that only speaks STARTTLS; port 465 answers SSL/TLS with the pinned certificate.
                save_via_api({**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port), "smtp_connection_type": "SSL",
                              "smtp_tls_verify": "Pinned", "smtp_tls_pin_sha256": fingerprint,
                              "smtp_connect_timeout": "3", "smtp_command_timeout": "5"})
                self.open_page()
                result = self.run_probe("check-button")
                self.assertIn("bad", result.get_attribute("class").split(), result.text)
                box = result.find_element(By.ID, "probe-suggestion")
                self.assertIn("port 465 answers with SSL/TLS (certificate matches the pinned fingerprint)", box.text)
                self.assertIn("Nothing is saved until you press Save", box.text)
                self.assertEqual(self.el("dirty-indicator").text, "All changes saved")

                self.click("use-suggestion")
                self.assertEqual(self.el("smtp_port").get_attribute("value"), "465")
                self.assertEqual(self.el("smtp_connection_type").get_attribute("value"), "SSL")
                self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes", "the suggestion must not save by itself")
                self.assertTrue(self.el("probe-unsaved").is_displayed(), "the probe card says the changes are unsaved")
                saved = settings().data
                self.assertEqual(saved["smtp_port"], str(sink.port))
                self.assertEqual(saved["smtp_connection_type"], "SSL")
                self.assertEqual(sink.messages, [], "a check sends nothing")


if __name__ == "__main__":
    unittest.main()
