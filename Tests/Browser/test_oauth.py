"""OAuth 2.0 sign-in on the page (issue 13): the sign-in methods XOAUTH2 and
OAUTHBEARER hide the password and show the OAuth section, the provider presets
fill it, and — against the suite's local authorization server (Microsoft
flavour) and its OAuth SMTP server (Exchange flavour) — a user signs in through
the consent page, sends a test email through XOAUTH2, sees the `oauth` hint to
sign in again once the server revoked the tokens, and signs out.

The end-to-end part needs the variables scripts/test exports for those servers
(EMAILSETUP_TEST_OAUTH_*) and fails loudly when one is unset."""

import base64
import json
import os
import ssl
import unittest
import urllib.parse
import urllib.request
import uuid

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, api, db_dump, env, make_driver, save_via_api, set_viewport, settings

OAUTH_VARIABLES = ("URL", "CA", "CLIENT_ID", "CLIENT_SECRET", "TENANT", "USER", "PASSWORD", "SMTP_PORT", "SPOOL")


# No OAuth settings and no client secret ("" removes it), whatever an earlier test saved.
OAUTH_BASELINE = {
    "oauth_provider": "Microsoft", "oauth_grant": "authorization_code", "oauth_tenant": "", "oauth_client_id": "",
    "oauth_scope": "", "oauth_authorization_endpoint": "", "oauth_token_endpoint": "", "oauth_device_endpoint": "",
    "oauth_revocation_endpoint": "", "oauth_client_secret": "",
}


def oauth_env():
    missing = ["EMAILSETUP_TEST_OAUTH_" + k for k in OAUTH_VARIABLES if not os.environ.get("EMAILSETUP_TEST_OAUTH_" + k)]
    if missing:
        raise RuntimeError("the OAuth browser test needs the authorization server and OAuth SMTP server that "
                           "scripts/test starts; unset: " + ", ".join(missing))
    return {k.lower(): os.environ["EMAILSETUP_TEST_OAUTH_" + k] for k in OAUTH_VARIABLES}


def authorization_server_control(path, form=None):
    """POST to one of the authorization server's /_test controls, trusting its test CA."""
    o = oauth_env()
    context = ssl.create_default_context(cafile=o["ca"])
    body = urllib.parse.urlencode(form or {}).encode()
    request = urllib.request.Request(o["url"].rstrip("/") + path, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, context=context, timeout=15) as response:
        assert response.status == 200, f"{path} answered {response.status}"


class OAuthFormTests(BrowserTestCase):
    """What the form shows for OAuth: no server needed beyond the stack."""

    def setUp(self):
        save_via_api({**BASELINE, **OAUTH_BASELINE})
        self.open_page()

    def visible(self, element_id):
        return self.el(element_id).is_displayed()

    def test_oauth_hides_the_password_and_shows_what_the_provider_needs(self):
        self.set_value("smtp_authentication_type", "Login")
        self.assertTrue(self.visible("smtp_password"))
        self.assertFalse(self.visible("oauth-section"))

        for method in ("XOAUTH2", "OAUTHBEARER"):
            self.set_value("smtp_authentication_type", method)
            self.assertFalse(self.visible("smtp_password"), f"the password field shows with {method}")
            self.assertTrue(self.visible("oauth-section"), f"no OAuth section with {method}")
        self.assertIn("mailbox", self.el("smtp_username-help").text)

        # Microsoft (the default): tenant and grant, no endpoints; a sign-in button.
        self.set_value("oauth_provider", "Microsoft")
        self.assertTrue(self.visible("oauth_tenant"))
        self.assertTrue(self.visible("oauth_grant"))
        self.assertFalse(self.visible("oauth_token_endpoint"))
        self.assertIn("SMTP.Send", self.el("oauth-register").text)
        self.assertTrue(self.visible("oauth-redirect-uri"))
        self.assertEqual(self.el("oauth-sign-in").text, "Sign in with Microsoft")
        self.assertIn("SMTP.Send", self.el("oauth_scope").get_attribute("placeholder"))

        # App-only: no sign-in button and no redirect URI, but the client secret is required.
        self.set_value("oauth_grant", "client_credentials")
        self.assertFalse(self.visible("oauth-sign-in"))
        self.assertFalse(self.visible("oauth-redirect-uri"))
        self.assertIn("SMTP.SendAsApp", self.el("oauth-register").text)
        self.assertIn("outlook.office365.com/.default", self.el("oauth_scope").get_attribute("placeholder"))
        self.assertIn("App-only", self.el("oauth-status").text)
        # The server's live check says it (a warning: a save without one is accepted).
        self.wait_until(lambda: "client secret" in ((self.error_of("oauth_client_secret") or "")
                                                    + (self.warning_of("oauth_client_secret") or "")).lower(),
                        "the missing client secret was pointed out")

        # Google: no tenant, no app-only, its scope.
        self.set_value("oauth_provider", "Google")
        self.assertFalse(self.visible("oauth_tenant"))
        self.assertFalse(self.visible("oauth_grant"))
        self.assertEqual(self.el("oauth_grant").get_attribute("value"), "authorization_code")
        self.assertIn("https://mail.google.com/", self.el("oauth-register").text)
        self.assertEqual(self.el("oauth-sign-in").text, "Sign in with Google")

        # Any other server: its endpoints.
        self.set_value("oauth_provider", "Generic")
        for field in ("oauth_authorization_endpoint", "oauth_token_endpoint", "oauth_device_endpoint", "oauth_revocation_endpoint"):
            self.assertTrue(self.visible(field), field)
        self.assertFalse(self.visible("oauth_tenant"))
        self.assertEqual(self.el("oauth-sign-in").text, "Sign in")

        # Every control of the section has a label (names for assistive technology).
        unlabelled = self.driver.execute_script("""
            return [...document.querySelectorAll('#oauth-section input, #oauth-section select')]
              .filter(e => e.offsetParent !== null && (!e.labels || e.labels.length === 0)).map(e => e.id);""")
        self.assertEqual(unlabelled, [])

        # The page's own validation: what each provider needs, before anything is sent.
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Not saved"), status)
        self.assertTrue(self.error_of("oauth_client_id"))
        self.assertTrue(self.error_of("oauth_token_endpoint"))
        self.assertEqual([r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")], [])

        self.set_value("smtp_authentication_type", "Plain")
        self.assertTrue(self.visible("smtp_password"))
        # The OAuth fields' errors belong to the answer for XOAUTH2: gone once the live check answers for Plain.
        self.wait_until(lambda: not self.visible("oauth-section"), "the OAuth section hid after leaving OAuth")

    def test_presets_default_to_oauth_and_ask_only_for_what_the_provider_needs(self):
        self.set_value("from_address", "mailer@contoso.example")
        self.click_preset("office365")
        self.assert_values(smtp_host="smtp.office365.com", smtp_authentication_type="XOAUTH2",
                           oauth_provider="Microsoft", smtp_username="mailer@contoso.example")
        self.assertFalse(self.visible("smtp_password"))
        self.assertTrue(self.visible("oauth_tenant"))
        self.assertFalse(self.visible("oauth_token_endpoint"))
        self.assertEqual(self.el("oauth-sign-in").text, "Sign in with Microsoft")
        self.assertIn("OAuth 2.0", self.el("preset-note").text)

        self.click_preset("gmail")
        self.assert_values(smtp_host="smtp.gmail.com", smtp_authentication_type="XOAUTH2",
                           oauth_provider="Google", oauth_grant="authorization_code")
        self.assertFalse(self.visible("oauth_tenant"))
        self.assertFalse(self.visible("oauth_grant"))
        self.assertIn("https://mail.google.com/", self.el("oauth_scope").get_attribute("placeholder"))
        self.assertEqual(self.el("oauth-sign-in").text, "Sign in with Google")

        # A password provider brings the password back.
        self.click_preset("sendgrid")
        self.assert_values(smtp_authentication_type="Auto")
        self.assertTrue(self.visible("smtp_password"))
        self.assertFalse(self.visible("oauth-section"))

    def test_signing_in_with_unsaved_changes_asks_to_save_first(self):
        self.click_preset("office365")
        self.record_requests()
        self.click("oauth-sign-in")
        self.assertTrue(self.visible("oauth-save-first"))
        self.assertIn("save", self.el("oauth-save-first").text.lower())
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "oauth-save-continue")
        self.assertEqual(self.requests("oauth/start"), [], "signing in started with unsaved changes")
        self.click("oauth-save-cancel")
        self.assertFalse(self.visible("oauth-save-first"))
        self.assertEqual(self.requests("oauth/start"), [])

    def test_phone_width_has_no_sideways_scrolling(self):
        try:
            set_viewport(self.driver, 390, 844, True)
            self.open_page()
            self.set_value("smtp_authentication_type", "XOAUTH2")
            self.set_value("oauth_provider", "Generic")
            self.set_value("oauth_token_endpoint", "https://auth.example.com/a/rather/long/path/to/the/oauth2/v2.0/token")
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            self.assertLessEqual(overflow, 0, "the page scrolls sideways at 390 px with the OAuth section")
            for element_id in ("oauth-sign-in", "oauth-redirect-copy", "oauth_client_secret"):
                rect = self.driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.right]",
                                                  self.el(element_id))
                self.assertGreaterEqual(rect[0], 0, element_id)
                self.assertLessEqual(rect[1], 390, element_id)
        finally:
            set_viewport(self.driver, 1280, 900, False)

    def click_preset(self, key):
        self.click_element(self.driver.find_element(By.CSS_SELECTOR, f"button[data-preset='{key}']"))

    def click_element(self, element):
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def assert_values(self, **expected):
        for key, value in expected.items():
            self.assertEqual(self.el(key).get_attribute("value"), value, key)


class OAuthSignInTests(BrowserTestCase):
    """Sign in through the local authorization server's consent page and send
    through XOAUTH2. Chromium visits that server's HTTPS pages, whose certificate
    comes from a test CA: this class alone ignores certificate errors."""

    @classmethod
    def setUpClass(cls):
        env()
        oauth_env()
        cls.driver = make_driver(extra_args=("--ignore-certificate-errors",))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        authorization_server_control("/_test/reset")

    def setUp(self):
        self.o = oauth_env()
        authorization_server_control("/_test/reset")
        # Tokens live an hour: after the revocation below, the SMTP server refuses the
        # access token still cached; the responder renews it once, the renewal fails,
        # and the answer is about signing in again, not a 535.
        api("POST", "oauth/sign_out")  # a clean start; "not signed in" is fine too
        # The SMTP part through the API; the OAuth part through the page below.
        save_via_api({**BASELINE, **OAUTH_BASELINE, "from_address": self.o["user"], "smtp_host": "127.0.0.1",
                      "smtp_port": self.o["smtp_port"], "smtp_connection_type": "STARTTLS",
                      "smtp_tls_verify": "None", "smtp_authentication_type": "None", "smtp_username": ""})

    def visible(self, element_id):
        return self.el(element_id).is_displayed()

    def screenshot_of_oauth_section(self, name):
        folder = os.path.join(env().root, "docs", "screenshots")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + ".png")
        # A window taller than the page: the whole section in one picture, no sticky bar over it.
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        try:
            set_viewport(self.driver, 1280, max(900, height + 100))
            self.driver.execute_script("document.activeElement.blur();"
                                       "document.getElementById('oauth-section').scrollIntoView({block: 'start'})")
            self.el("oauth-section").screenshot(path)
        finally:
            set_viewport(self.driver, 1280, 900)
        self.assertGreater(os.path.getsize(path), 5_000, path)

    def spooled(self):
        """What the OAuth SMTP server accepted: {file name: its metadata (mechanism, user, …)}."""
        folder = os.path.join(self.o["spool"], "meta")
        found = {}
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.endswith(".json"):
                with open(os.path.join(folder, name)) as f:
                    found[name] = json.load(f)
        return found

    def sign_in_at_the_provider(self):
        """On the authorization server's consent page: log in and approve."""
        self.wait_until(lambda: self.driver.current_url.startswith(self.o["url"]),
                        "the browser went to the authorization server", timeout=30)
        self.wait_until(lambda: self.driver.find_elements(By.ID, "approve"), "the consent page showed")
        self.driver.find_element(By.NAME, "username").send_keys(self.o["user"])
        self.driver.find_element(By.NAME, "password").send_keys(self.o["password"])
        self.driver.find_element(By.ID, "approve").click()
        self.wait_until(lambda: self.driver.current_url.startswith(env().base), "the provider sent the browser back", timeout=30)
        self.wait_until(lambda: not self.el("settings-form").get_attribute("hidden"), "the page loaded the settings")

    def test_sign_in_send_revoked_sign_in_again_hint_sign_out(self):
        o = self.o
        secret = o["client_secret"]
        self.open_page()
        self.assertTrue(settings().data.get("oauth_redirect_uri", "").endswith("/api/setup/oauth/callback"))

        # The page: OAuth 2.0 for Microsoft with the test tenant and client.
        self.fill({"smtp_authentication_type": "XOAUTH2", "smtp_username": o["user"], "oauth_provider": "Microsoft",
                   "oauth_grant": "authorization_code", "oauth_tenant": o["tenant"], "oauth_client_id": o["client_id"],
                   "oauth_client_secret": secret})
        self.assertFalse(self.visible("smtp_password"))
        self.assertEqual(self.el("oauth-redirect-uri").get_attribute("value"), settings().data["oauth_redirect_uri"])
        self.assertEqual(self.el("oauth-status").text, "Not signed in.")

        # The client secret leaves the page only encrypted (RSA-OAEP, base64), like the password.
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status + " " + self.el("banner").text)
        posts = [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]
        self.assertEqual(len(posts), 1)
        self.assertNotIn(secret, posts[0]["body"])
        sent = json.loads(posts[0]["body"])["data"]["oauth_client_secret"]
        self.assertIn(len(base64.b64decode(sent, validate=True)), (256, 384, 512), "not an RSA-OAEP ciphertext")
        stored = settings().data
        self.assertTrue(stored["oauth_client_secret_set"])
        self.assertEqual(stored["oauth_account"], "")
        self.assertNotIn(secret, db_dump())
        self.assertIn("A client secret is set", self.el("secret-state").text)
        self.assertEqual(self.el("oauth-redirect-uri").get_attribute("value"), stored["oauth_redirect_uri"],
                         "the redirect URI is gone after saving")
        self.screenshot_of_oauth_section("oauth-signed-out")

        # An unsaved change: "Sign in" asks to save first; "Save and continue" saves and goes on.
        self.set_value("smtp_command_timeout", "31")
        self.click("oauth-sign-in")
        self.assertTrue(self.visible("oauth-save-first"))
        self.click("oauth-save-continue")
        self.sign_in_at_the_provider()
        self.assertEqual(settings().data["smtp_command_timeout"], "31", "Save and continue did not save")

        # Back, signed in: said where the user looks, and the query gone from the address bar.
        self.assertNotIn("oauth=", self.driver.current_url)
        self.wait_until(lambda: self.visible("oauth-outcome"), "the sign-in outcome showed")
        self.assertIn(f"Signed in as {o['user']}", self.el("oauth-outcome").text)
        self.assertEqual(self.el("oauth-status").text, f"Signed in as {o['user']} · renews automatically")
        self.assertTrue(self.visible("oauth-sign-out"))
        self.assertEqual(settings().data["oauth_account"], o["user"])
        self.screenshot_of_oauth_section("oauth-signed-in")

        # A test email through XOAUTH2, delivered to the SMTP server's spool as the signed-in mailbox.
        before = self.spooled()
        self.set_value("test_address", "someone@example.test")
        box = self.run_probe("test-button")
        self.assertIn("ok", box.get_attribute("class").split(), box.text)
        self.assertIn("XOAUTH2", box.text)
        arrived = [m for name, m in self.spooled().items() if name not in before]
        self.assertEqual(len(arrived), 1, "no message (or more than one) reached the OAuth SMTP server")
        self.assertEqual((arrived[0]["mechanism"], arrived[0]["user"]), ("XOAUTH2", o["user"]))

        # The provider revokes every token: the answer is the oauth hint to sign in again.
        authorization_server_control("/_test/revoke_all")
        box = self.run_probe("test-button")
        self.assertIn("bad", box.get_attribute("class").split(), box.text)
        self.assertIn("signing in with OAuth", box.text)
        hint = box.find_element(By.CSS_SELECTOR, ".hint").text
        self.assertIn("sign in again", hint.lower())
        # One click from the hint to the sign-in button.
        self.click("probe-sign-in")
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "oauth-sign-in")

        # Sign out: back to the state before signing in.
        self.click("oauth-sign-out")
        self.wait_until(lambda: self.el("oauth-status").text == "Not signed in.", "the page shows signed out")
        self.assertFalse(self.visible("oauth-sign-out"))
        self.assertTrue(self.visible("oauth-sign-in"))
        self.assertIn("Signed out", self.el("oauth-outcome").text)
        self.assertEqual(settings().data["oauth_account"], "")

    def test_a_failed_sign_in_is_shown_and_removed_from_the_address(self):
        o = self.o
        save_via_api({"smtp_authentication_type": "XOAUTH2", "smtp_username": o["user"], "oauth_provider": "Microsoft",
                      "oauth_grant": "authorization_code", "oauth_tenant": o["tenant"], "oauth_client_id": o["client_id"]})
        message = "The sign-in request expired (" + uuid.uuid4().hex[:6] + "); start it again."
        self.driver.get(env().base + "?oauth=error&message=" + urllib.parse.quote(message))
        self.wait_until(lambda: self.el("oauth-outcome").is_displayed(), "the outcome showed")
        outcome = self.el("oauth-outcome")
        self.assertIn(message, outcome.text)
        self.assertEqual(outcome.get_attribute("role"), "alert")
        self.assertNotIn("oauth=", self.driver.current_url)
        # A reload does not show it again.
        self.open_page()
        self.assertFalse(self.el("oauth-outcome").is_displayed())


if __name__ == "__main__":
    unittest.main()
