"""The settings form in a real browser against the real stack: save and reload,
validation (the page's own and the server's, mapped to fields), warnings,
undo and the unsaved-changes indicator, presets and the port that follows the
connection security, version conflicts, keyboard-only use."""

import json
import unittest
import uuid

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from support import BASELINE, BrowserTestCase, api, save_via_api, settings


# The words a document shows for each field: the label's own text (without the page's
# markers after it: required star, "(optional)", a unit), the help text, the options.
PAGE_TEXTS = """
const doc = arguments[0] === null ? document : new DOMParser().parseFromString(arguments[0], 'text/html');
const texts = {};
for (const key of arguments[1]) {
  const label = doc.querySelector(`label[for="${key}"]`);
  const select = doc.querySelector(`select[name="${key}"]`);
  texts[key] = {
    label: label ? [...label.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim() : null,
    help: doc.getElementById(`${key}-help`)?.textContent ?? null,
    values: select ? [...select.options].map((o) => ({ value: o.value, label: o.textContent })) : null,
  };
}
return texts;
"""


class SettingsFormTests(BrowserTestCase):

    def setUp(self):
        save_via_api(BASELINE)
        self.open_page()

    def test_fill_save_reload_shows_the_saved_values(self):
        host = f"mail-{uuid.uuid4().hex[:8]}.example.org"
        values = {
            "from_address": "alerts@example.org", "smtp_host": host, "smtp_port": "2525",
            "smtp_connection_type": "SSL", "smtp_authentication_type": "Login", "smtp_username": "alerts",
            "smtp_tls_verify": "Full", "smtp_connect_timeout": "15", "smtp_command_timeout": "45",
        }
        self.fill(values)
        self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes")
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status)
        self.assertEqual(self.el("dirty-indicator").text, "All changes saved")

        stored = settings().data
        for key, value in values.items():
            self.assertEqual(stored[key], value, key)

        self.open_page()
        for key, value in values.items():
            self.assertEqual(self.el(key).get_attribute("value"), value, key)
        self.assertIn(f"Version {stored['smtp_settings_version']}", self.el("version-line").text)

    def test_labels_help_and_options_are_the_schemas_words_before_and_after_the_script(self):
        """The schema is the one source of the page's words: what the script puts on the page,
        and the fallback index.html shows before it runs, equal the schema's for every field."""
        fields = api("GET", "email_smtp/schema").data["fields"]
        self.assertGreater(len(fields), 20)
        keys = [f["key"] for f in fields]
        # An option shows a value's label; its short_label names it in messages only.
        expected = {f["key"]: {"label": f["label"], "help": f["help"],
                               "values": [{"value": v["value"], "label": v["label"]} for v in f["values"]] if "values" in f else None}
                    for f in fields}
        html = self.driver.execute_async_script(
            "const done = arguments[0]; fetch('index.html', {cache: 'no-store'}).then((r) => r.text()).then(done, (e) => done(String(e)));")
        self.assertIn('id="settings-form"', html)
        for source, document in (("the page after the script", None), ("index.html as served", html)):
            shown = self.driver.execute_script(PAGE_TEXTS, document, keys)
            for key in keys:
                self.assertEqual(shown[key], expected[key], f"{key} in {source}")

    def test_invalid_input_shows_errors_next_to_fields_and_saves_nothing(self):
        before = settings().data["smtp_settings_version"]
        self.fill({"from_address": "not-an-address", "smtp_host": "bad host", "smtp_port": "70000",
                   "smtp_authentication_type": "Plain", "smtp_username": "",
                   "smtp_tls_verify": "Pinned", "smtp_tls_pin_sha256": "abc123"})
        # As you type: the address error is there before any save (from the server's live check).
        self.wait_until(lambda: "@" in (self.error_of("from_address") or ""), "the address error showed while typing")
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Not saved"), status)
        for field in ("from_address", "smtp_host", "smtp_port", "smtp_username", "smtp_tls_pin_sha256"):
            self.assertTrue(self.error_of(field), f"no error shown for {field}")
        self.assertIn("65535", self.error_of("smtp_port"))
        self.assertIn("64 hex", self.error_of("smtp_tls_pin_sha256"))
        # Focus moved to the first field in error.
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "from_address")
        saves = [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]
        self.assertEqual(saves, [], "an invalid form was saved")
        self.assertEqual(settings().data["smtp_settings_version"], before)

        # Fixing a field removes its error as you type.
        self.set_value("smtp_port", "587")
        self.assertIsNone(self.error_of("smtp_port"))

    def test_timeouts_are_checked_and_the_advanced_section_opens_on_error(self):
        self.driver.execute_script("document.getElementById('advanced').open = false")
        self.driver.execute_script("document.getElementById('smtp_command_timeout').value = '601';"
                                   "document.getElementById('smtp_command_timeout').dispatchEvent(new Event('input', {bubbles: true}))")
        self.save_and_wait()
        self.assertTrue(self.el("advanced").get_attribute("open") is not None)
        self.assertIn("1 to 600", self.error_of("smtp_command_timeout"))
        self.set_value("smtp_command_timeout", "30")
        self.set_value("smtp_connect_timeout", "0")
        self.assertIn("1 to 120", self.error_of("smtp_connect_timeout"))

    def test_server_field_errors_are_shown_next_to_their_fields(self):
        # A value this page cannot produce (as from a stale page): only the server catches it.
        before = settings().data["smtp_settings_version"]
        self.driver.execute_script("""
            const s = document.getElementById('smtp_connection_type');
            const o = document.createElement('option'); o.value = 'Carrier-Pigeon'; o.textContent = 'Carrier pigeon';
            s.append(o); s.value = 'Carrier-Pigeon'; s.dispatchEvent(new Event('change', {bubbles: true}));""")
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Not saved"), status)
        # The server decides (its validate endpoint before saving, or the save itself).
        asked = [r for r in self.requests("email_smtp") if r["method"] == "POST"]
        self.assertGreaterEqual(len(asked), 1, "the page did not ask the server")
        message = self.error_of("smtp_connection_type")
        self.assertTrue(message, "the server's error is not next to the field")
        self.assertIn("STARTTLS", message)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "smtp_connection_type")
        self.assertEqual(settings().data["smtp_settings_version"], before)

    def test_server_warnings_are_shown_as_warnings_not_errors(self):
        self.fill({"smtp_port": "465", "smtp_connection_type": "STARTTLS"})
        self.set_value("smtp_port", "465")
        self.set_value("smtp_tls_verify", "None")
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status)
        self.assertIsNone(self.error_of("smtp_tls_verify"))
        self.assertIn("verification is off", (self.warning_of("smtp_tls_verify") or "").lower())
        self.assertIn("465", self.warning_of("smtp_connection_type") or "")

    def test_undo_returns_to_the_saved_state(self):
        self.fill({"smtp_host": "other.example.net", "smtp_port": "2626", "smtp_authentication_type": "Auto",
                   "smtp_username": "someone"})
        self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes")
        self.assertTrue(self.el("probe-unsaved").is_displayed(), "the test panel does not say the changes are unsaved")
        self.click("undo")
        self.assertEqual(self.el("smtp_host").get_attribute("value"), BASELINE["smtp_host"])
        self.assertEqual(self.el("smtp_port").get_attribute("value"), BASELINE["smtp_port"])
        self.assertEqual(self.el("smtp_authentication_type").get_attribute("value"), "None")
        self.assertEqual(self.el("dirty-indicator").text, "All changes saved")
        self.assertFalse(self.el("probe-unsaved").is_displayed())
        self.assertFalse(self.el("undo").is_enabled())

    def test_port_follows_connection_security_unless_typed(self):
        self.set_value("smtp_connection_type", "SSL")
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "465")
        self.set_value("smtp_connection_type", "None")
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "25")
        self.set_value("smtp_connection_type", "STARTTLS")
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "587")
        self.set_value("smtp_port", "2525")
        self.set_value("smtp_connection_type", "SSL")
        self.assertEqual(self.el("smtp_port").get_attribute("value"), "2525", "a typed port was overwritten")

    def test_presets_fill_provider_settings(self):
        self.click_preset("Gmail")
        # Gmail and Office 365 sign in with OAuth 2.0 (test_oauth.py covers their OAuth fields).
        self.assert_values(smtp_host="smtp.gmail.com", smtp_port="587", smtp_connection_type="STARTTLS",
                           smtp_authentication_type="XOAUTH2", oauth_provider="Google")
        self.click_preset("Office 365")
        self.assert_values(smtp_host="smtp.office365.com", smtp_port="587", smtp_connection_type="STARTTLS",
                           smtp_authentication_type="XOAUTH2", oauth_provider="Microsoft")
        self.click_preset("Amazon SES")
        self.assert_values(smtp_host="email-smtp.us-east-1.amazonaws.com", smtp_port="587", smtp_connection_type="STARTTLS")
        self.set_value("ses-region", "eu-west-1")
        self.assert_values(smtp_host="email-smtp.eu-west-1.amazonaws.com")
        self.click_preset("SendGrid")
        self.assert_values(smtp_host="smtp.sendgrid.net", smtp_port="587", smtp_username="apikey")
        self.click_preset("Mailgun")
        self.assert_values(smtp_host="smtp.mailgun.org", smtp_port="587")
        self.click_preset("Local relay")
        self.assert_values(smtp_host="localhost", smtp_port="25", smtp_connection_type="None",
                           smtp_authentication_type="None")
        self.assertFalse(self.el("smtp_username").is_displayed(), "user name shown although sign-in is None")
        # The sender address is not a provider's business.
        self.assert_values(from_address=BASELINE["from_address"])

    def test_presets_set_what_they_own_and_clear_the_rest(self):
        self.set_value("smtp_tls_verify", "Pinned")
        self.set_value("smtp_tls_pin_sha256", "ab" * 32)
        self.set_value("smtp_authentication_type", "Login")
        self.set_value("smtp_password", "s3cret-typed")
        self.click_preset("SendGrid")
        self.assert_values(smtp_username="apikey", smtp_authentication_type="Auto", smtp_tls_verify="Full",
                           smtp_tls_pin_sha256="")
        self.click_preset("Gmail")
        # OAuth: the user name is the mailbox, the sender address; never SendGrid's "apikey".
        self.assert_values(smtp_username=BASELINE["from_address"], smtp_authentication_type="XOAUTH2")
        self.click_preset("SendGrid")
        self.click_preset("Mailgun")
        self.assert_values(smtp_username="", smtp_host="smtp.mailgun.org", smtp_authentication_type="Auto")
        self.click_preset("Local relay")
        self.assert_values(smtp_username="", smtp_authentication_type="None", smtp_connection_type="None")
        # The user's own: sender address and the typed password stay.
        self.assert_values(from_address=BASELINE["from_address"], smtp_password="s3cret-typed")

    def test_ses_region_is_checked_in_its_own_field(self):
        self.click_preset("Amazon SES")
        self.set_value("ses-region", "EU WEST")
        self.assertTrue(self.error_of("ses-region"), "no error under the region field")
        self.assertIn("eu-west-1", self.error_of("ses-region"))
        self.assertIsNone(self.error_of("smtp_host"), "the region's error landed on the server field")
        self.assert_values(smtp_host="email-smtp.us-east-1.amazonaws.com")
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Not saved"), status)
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "ses-region")
        self.assertEqual([r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")], [])
        self.set_value("ses-region", "eu-west-1")
        self.assertIsNone(self.error_of("ses-region"))
        self.assert_values(smtp_host="email-smtp.eu-west-1.amazonaws.com")

    def click_preset(self, name):
        button = self.driver.find_element(By.XPATH, f"//button[@data-preset][normalize-space()='{name}']")
        button.click()

    def assert_values(self, **expected):
        for key, value in expected.items():
            self.assertEqual(self.el(key).get_attribute("value"), value, key)

    # -- conflicts: someone else saved after this page loaded

    def arrange_conflict(self):
        """The user edits host and port; meanwhile another session saves another host
        and another sender address; the user's Save meets a 409."""
        self.set_value("smtp_host", "mine.example.com")
        self.set_value("smtp_port", "2525")
        other = save_via_api({**BASELINE, "smtp_host": "theirs.example.com", "from_address": "theirs@example.com"})
        self.record_requests()
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Not saved"), status)
        self.wait_until(lambda: self.el("conflict").is_displayed(), "the conflict panel appeared")
        return other

    def conflict_rows(self):
        rows = {}
        for tr in self.driver.find_elements(By.CSS_SELECTOR, "#conflict-table tbody tr"):
            cells = tr.find_elements(By.CSS_SELECTOR, "td")
            rows[tr.get_attribute("data-field")] = (cells[0].text, cells[1].text, "clash" in (tr.get_attribute("class") or ""))
        return rows

    def test_conflict_is_explained_by_the_save_button_field_by_field(self):
        other = self.arrange_conflict()
        # Where the user clicked: the panel sits right above the Save button's bar, in view, focused.
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "conflict")
        panel, save = self.driver.execute_script(
            "return ['conflict', 'save'].map(id => document.getElementById(id).getBoundingClientRect().toJSON())")
        self.assertTrue(0 <= panel["top"] and save["bottom"] <= self.driver.execute_script("return innerHeight"),
                        f"the conflict panel or the Save button is off-screen: {panel}, {save}")
        self.assertTrue(0 <= save["top"] - panel["bottom"] <= 120, f"the panel is not just above the Save button: {panel}, {save}")
        self.assertFalse(self.el("banner").is_displayed(), "the explanation went to the banner at the top")
        self.assertIn(f"version {other.data['smtp_settings_version']}", self.el("conflict").text)
        rows = self.conflict_rows()
        self.assertEqual(rows["smtp_host"], ("theirs.example.com", "mine.example.com", True))
        self.assertEqual(rows["from_address"], ("theirs@example.com", "not changed", False))
        self.assertEqual(rows["smtp_port"], ("not changed", "2525", False))
        self.assertEqual(set(rows), {"smtp_host", "from_address", "smtp_port"})
        # Nothing lost while the user decides: the form still holds the edits.
        self.assertEqual(self.el("smtp_host").get_attribute("value"), "mine.example.com")
        self.assertEqual(self.el("dirty-indicator").text, "Unsaved changes")

    def test_conflict_keep_mine_saves_on_top_of_theirs(self):
        other = self.arrange_conflict()
        self.click("conflict-keep-mine")
        self.wait_until(lambda: self.el("save-status").text.startswith("Saved"), "the second save finished")
        posts = [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]
        self.assertEqual(posts[-1]["headers"].get("If-Match"), other.etag, "Keep mine did not name their version")
        stored = settings().data
        self.assertEqual(stored["smtp_host"], "mine.example.com")
        self.assertEqual(stored["smtp_port"], "2525")
        # Their change to a field the user did not touch survives.
        self.assertEqual(stored["from_address"], "theirs@example.com")
        self.assertEqual(int(stored["smtp_settings_version"]), int(other.data["smtp_settings_version"]) + 1)
        self.assertFalse(self.el("conflict").is_displayed())
        self.assertEqual(self.el("from_address").get_attribute("value"), "theirs@example.com")

    def test_conflict_take_theirs_shows_their_version(self):
        other = self.arrange_conflict()
        self.click("conflict-take-theirs")
        self.assertFalse(self.el("conflict").is_displayed())
        self.assert_values(smtp_host="theirs.example.com", smtp_port=BASELINE["smtp_port"], from_address="theirs@example.com")
        self.assertIn(f"Version {other.data['smtp_settings_version']}", self.el("version-line").text)
        self.assertEqual(self.el("dirty-indicator").text, "All changes saved")
        self.assertIn("dropped", self.el("save-status").text)
        self.assertEqual(settings().data["smtp_host"], "theirs.example.com")

    def test_conflict_in_a_second_browser_session(self):
        """Two sessions of the page: the second saves first; the first one's Save conflicts."""
        from support import make_driver
        second = make_driver()
        try:
            second.get(self.driver.current_url)
            self.wait_until(lambda: not second.find_element(By.ID, "settings-form").get_attribute("hidden"),
                            "the second session loaded")
            field = second.find_element(By.ID, "smtp_command_timeout")
            second.execute_script("arguments[0].closest('details').open = true", field)
            field.clear()
            field.send_keys("45")
            second.find_element(By.ID, "save").click()
            self.wait_until(lambda: second.find_element(By.ID, "save-status").text.startswith("Saved"),
                            "the second session saved")
        finally:
            second.quit()
        self.set_value("smtp_command_timeout", "50")
        self.save_and_wait()
        self.wait_until(lambda: self.el("conflict").is_displayed(), "the conflict panel appeared")
        self.assertEqual(self.conflict_rows()["smtp_command_timeout"], ("45", "50", True))

    def test_save_sends_if_match_of_the_loaded_version(self):
        etag = settings().etag
        self.record_requests()
        self.set_value("smtp_host", "ifmatch.example.com")
        self.save_and_wait()
        posts = [r for r in self.requests("email_smtp") if r["method"] == "POST" and r["url"].endswith("/email_smtp")]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["headers"].get("If-Match"), etag)
        self.assertEqual(posts[0]["headers"].get("X-Requested-With"), "EmailSetup")
        body = json.loads(posts[0]["body"])
        self.assertNotIn("smtp_password", body["data"], "an untouched password must be absent (keep)")

    def test_keyboard_only_save(self):
        """Tab to a field, type, Tab to Save, press Enter — no mouse at all."""
        host = f"kbd-{uuid.uuid4().hex[:6]}.example.com"
        d = self.driver
        d.find_element(By.TAG_NAME, "body")  # fresh page; focus starts at the document
        actions = ActionChains(d)

        def tab_to(element_id, limit=80):
            for _ in range(limit):
                if d.switch_to.active_element.get_attribute("id") == element_id:
                    return
                ActionChains(d).send_keys(Keys.TAB).perform()
            self.fail(f"Tab never reached #{element_id}")

        tab_to("smtp_host")
        # Visible focus: the focused field draws an outline.
        outline = d.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        self.assertNotEqual(outline, "none", "the focused field shows no focus outline")
        actions.key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(host).perform()
        tab_to("save")
        ActionChains(d).send_keys(Keys.ENTER).perform()
        self.wait_until(lambda: self.el("save-status").text.startswith("Saved"), "the keyboard save finished")
        self.assertEqual(settings().data["smtp_host"], host)

        # Space works on buttons too: back (Shift+Tab) to a preset, then on to Undo.
        for _ in range(80):
            if d.switch_to.active_element.text == "Gmail":
                break
            ActionChains(d).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        self.assertEqual(d.switch_to.active_element.text, "Gmail")
        ActionChains(d).send_keys(Keys.SPACE).perform()
        self.assertEqual(self.el("smtp_host").get_attribute("value"), "smtp.gmail.com")
        tab_to("undo")
        ActionChains(d).send_keys(Keys.SPACE).perform()
        self.assertEqual(self.el("smtp_host").get_attribute("value"), host)


if __name__ == "__main__":
    unittest.main()
