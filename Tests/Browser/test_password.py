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
        posts = [r for r in self.requests("email_smtp") if r["method"] == "POST"]
        self.assertEqual(len(posts), 1)
        self.assertNotIn(password, posts[0]["body"])
        sent = json.loads(posts[0]["body"])["data"]["smtp_password"]
        cipher = base64.b64decode(sent, validate=True)
        self.assertIn(len(cipher), (256, 384, 512), "not the size of an RSA-OAEP ciphertext")
        self.assertNotIn(password.encode(), cipher)

        # What the server kept: the secret sealed, never the clear text or the transport ciphertext.
        self.assertTrue(settings().data["smtp_password_set"])
        dump = db_dump()
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
        body = json.loads([r for r in self.requests("email_smtp") if r["method"] == "POST"][0]["body"])
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
        body = json.loads([r for r in self.requests("email_smtp") if r["method"] == "POST"][0]["body"])
        self.assertEqual(body["data"]["smtp_password"], "")
        self.assertFalse(settings().data["smtp_password_set"])
        self.assertEqual(self.el("password-state").text, "No password is set.")


if __name__ == "__main__":
    unittest.main()
