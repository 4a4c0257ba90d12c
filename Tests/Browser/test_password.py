"""The SMTP password in the browser: encrypted with the server's public key
before it leaves the page (RSA-OAEP, base64), never in the database in clear,
never shown or prefilled again, shown only while typing on request, and
removable. Needs GET /api/setup/email_public_key and the vault behind it."""

import base64
import json
import unittest
import uuid

from support import BASELINE, BrowserTestCase, db_dump, save_via_api, settings


class PasswordTests(BrowserTestCase):

    def setUp(self):
        save_via_api(BASELINE, password="")
        self.open_page()

    def set_password_in_the_form(self, password):
        self.fill({"smtp_authentication_type": "Login", "smtp_username": "mailer@example.com"})
        self.set_value("smtp_password", password)

    def test_password_is_sent_encrypted_and_never_stored_or_shown_in_clear(self):
        password = "Pw-" + uuid.uuid4().hex
        self.set_password_in_the_form(password)
        self.assertEqual(self.el("smtp_password").get_attribute("type"), "password")
        self.assertIn("will be saved", self.el("password-state").text)
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status + " " + self.el("banner").text)

        # What the page sent: no clear password anywhere; RSA-OAEP ciphertext in base64.
        posts = [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]
        self.assertEqual(len(posts), 1)
        # A fresh key and single-use nonce for this save, fetched when saving.
        self.assertEqual(len(self.requests("email_public_key")), 1)
        self.assertNotIn(password, posts[0]["body"])
        sent = json.loads(posts[0]["body"])["data"]["smtp_password"]
        cipher = base64.b64decode(sent, validate=True)
        self.assertIn(len(cipher), (256, 384, 512), "not the size of an RSA-OAEP ciphertext")
        self.assertNotIn(password.encode(), cipher)

        # What the server kept: the secret sealed, never the clear text or the transport ciphertext.
        self.assertTrue(settings().data["smtp_password_set"])
        dump = db_dump()
        self.assertIn("smtp_host", dump, "the dump holds no settings: it checks nothing")
        self.assertNotIn(password, dump)
        self.assertNotIn(sent, dump)

        # What the page shows afterwards and after a reload: an empty field and "set".
        self.assertEqual(self.el("smtp_password").get_attribute("value"), "")
        self.open_page()
        self.assertEqual(self.el("smtp_password").get_attribute("value"), "")
        self.assertIn("A password is set", self.el("password-state").text)
        self.assertNotIn(password, self.driver.page_source)

        # Saving something else keeps it (the field is absent from the request).
        self.record_requests()
        self.set_value("smtp_host", "keep.example.com")
        self.save_and_wait()
        body = json.loads([r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")][0]["body"])
        self.assertNotIn("smtp_password", body["data"])
        self.assertTrue(settings().data["smtp_password_set"])

    def test_show_and_hide_while_typing(self):
        self.set_password_in_the_form("visible-for-a-moment")
        toggle = self.el("password-toggle")
        self.assertEqual(toggle.get_attribute("aria-pressed"), "false")
        self.click("password-toggle")
        self.assertEqual(self.el("smtp_password").get_attribute("type"), "text")
        self.assertEqual(toggle.get_attribute("aria-pressed"), "true")
        self.click("password-toggle")
        self.assertEqual(self.el("smtp_password").get_attribute("type"), "password")

    def test_clearing_the_saved_password_sends_an_empty_string(self):
        self.set_password_in_the_form("to-be-removed-" + uuid.uuid4().hex[:6])
        self.assertTrue(self.save_and_wait().startswith("Saved"))
        self.assertTrue(settings().data["smtp_password_set"])
        self.open_page()
        self.record_requests()
        self.click("password-clear")
        self.assertIn("will be removed", self.el("password-state").text)
        self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes")
        self.assertTrue(self.save_and_wait().startswith("Saved"))
        body = json.loads([r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")][0]["body"])
        self.assertEqual(body["data"]["smtp_password"], "")
        self.assertFalse(settings().data["smtp_password_set"])
        self.assertEqual(self.el("password-state").text, "No password is set.")


class NoWebCryptoTests(BrowserTestCase):
    """A page opened over plain HTTP on a remote host has no crypto.subtle. The
    browser is made to look like that before the page's scripts run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.driver.execute_cdp_cmd("Page.enable", {})
        cls.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            Object.defineProperty(window, 'isSecureContext', {get: () => false});
            Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined});"""})

    def setUp(self):
        save_via_api(BASELINE, password="")
        self.open_page()

    def test_new_password_impossible_everything_else_works(self):
        self.assertFalse(self.driver.execute_script("return !!(window.crypto && crypto.subtle)"))
        self.set_value("smtp_authentication_type", "Auto")  # the password field shows with a sign-in method
        notice = self.el("crypto-notice")
        self.assertTrue(notice.is_displayed())
        self.assertIn("HTTPS", notice.text)
        self.assertFalse(self.el("smtp_password").is_enabled(), "a password that cannot be encrypted can be typed")
        self.fill({"smtp_host": "no-crypto.example.com", "smtp_username": "someone"})
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status + " " + self.el("banner").text)
        self.assertEqual(settings().data["smtp_host"], "no-crypto.example.com")


if __name__ == "__main__":
    unittest.main()
