"""States of the settings form a first-time administrator meets (issue 15):
the first run with nothing saved, required markers, the test address box, the
phone layout (no cut option labels, no sideways scrolling) and a solid focus
ring on everything the keyboard reaches."""

import unittest

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from support import BASELINE, BrowserTestCase, SmtpSink, first_run, save_via_api, set_viewport

TEXT_WIDTH = """
  const el = arguments[0], text = arguments[1];
  const cs = getComputedStyle(el);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return [ctx.measureText(text).width, room];"""


class FirstRunTests(BrowserTestCase):

    def test_first_run_is_coherent(self):
        first_run(self)
        self.open_page()
        self.assertIn("Not saved yet", self.el("version-line").text)
        self.assertEqual(self.el("dirty-indicator").text, "", "“All changes saved” beside “Not saved yet”")
        # Nothing to try yet: both buttons disabled, and the reason beside them.
        for button in ("check-button", "test-button"):
            self.assertFalse(self.el(button).is_enabled(), f"{button} enabled with nothing saved")
            self.assertIn("probe-first-run", self.el(button).get_attribute("aria-describedby") or "")
        self.assertTrue(self.el("probe-first-run").is_displayed())
        self.assertIn("Save the settings first", self.el("probe-first-run").text)
        # Required fields are marked for the eye and for screen readers.
        for field in ("from_address", "smtp_host"):
            star = self.driver.find_element(By.CSS_SELECTOR, f"label[for='{field}'] .req")
            self.assertTrue(star.is_displayed(), f"{field} has no visible required marker")
            self.assertEqual(self.el(field).get_attribute("required"), "true", f"{field} is not required for assistive technology")
        self.assertFalse(self.driver.find_element(By.CSS_SELECTOR, "label[for='smtp_username'] .req").is_displayed())

        # Tabbing through the empty fields turns nothing red.
        self.el("from_address").click()
        for _ in range(12):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
        invalid = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('[aria-invalid=true]')).map(e => e.id)")
        self.assertEqual(invalid, [], "errors shown before anything was typed")

        # A sign-in method makes the user name required, marker included.
        self.set_value("smtp_authentication_type", "Login")
        self.assertTrue(self.driver.find_element(By.CSS_SELECTOR, "label[for='smtp_username'] .req").is_displayed())
        self.assertEqual(self.el("smtp_username").get_attribute("required"), "true")
        self.set_value("smtp_authentication_type", "None")

        self.set_value("from_address", "first@example.com")
        self.set_value("smtp_host", "first.example.com")
        status = self.save_and_wait()
        self.assertTrue(status.startswith("Saved"), status)
        self.assertEqual(self.el("dirty-indicator").text, "All changes saved")
        self.assertFalse(self.el("probe-first-run").is_displayed())
        for button in ("check-button", "test-button"):
            self.assertTrue(self.el(button).is_enabled(), f"{button} still disabled after the first save")
            self.assertNotIn("probe-first-run", self.el(button).get_attribute("aria-describedby") or "")


class TestAddressTests(BrowserTestCase):

    def test_the_test_address_shows_its_placeholder_and_remembers_the_last_address(self):
        with SmtpSink() as sink:
            save_via_api({**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port), "smtp_connection_type": "None"})
            for width, height, mobile in ((1280, 900, False), (390, 844, True)):
                set_viewport(self.driver, width, height, mobile)
                self.open_page()
                self.driver.execute_script("localStorage.removeItem('emailsetup.testAddress')")
                self.open_page()
                box = self.el("test_address")
                self.assertEqual(box.get_attribute("value"), "")
                needed, room = self.driver.execute_script(TEXT_WIDTH, box, box.get_attribute("placeholder"))
                self.assertLessEqual(needed, room, f"the placeholder is cut at {width} px")
            self.set_value("test_address", "last@example.com")
            self.run_probe("test-button")
            sink.wait_for_message()
            self.open_page()
            self.assertEqual(self.el("test_address").get_attribute("value"), "last@example.com")
        set_viewport(self.driver, 1280, 900, False)


class PhoneLayoutTests(BrowserTestCase):

    def setUp(self):
        save_via_api(BASELINE)
        set_viewport(self.driver, 390, 844, True)
        self.open_page()

    def tearDown(self):
        super().tearDown()
        set_viewport(self.driver, 1280, 900, False)

    def test_select_options_are_not_cut_at_phone_width(self):
        # Every section shown, so every select has its real width.
        self.set_value("smtp_authentication_type", "XOAUTH2")
        self.set_value("oauth_provider", "Generic")
        cut = []
        for select in self.driver.find_elements(By.CSS_SELECTOR, "#settings-form select"):
            if not select.is_displayed():
                continue
            for option in select.find_elements(By.TAG_NAME, "option"):
                needed, room = self.driver.execute_script(TEXT_WIDTH, select, option.get_attribute("textContent"))
                if needed > room:
                    cut.append(f"{select.get_attribute('id')}: {option.get_attribute('textContent')!r} needs {needed:.0f} px of {room:.0f}")
        self.assertEqual(cut, [], "option texts cut off at 390 px")

    def test_no_sideways_scrolling_with_errors_and_long_values(self):
        self.fill({"smtp_host": "a" * 70 + ".example.com", "from_address": "x" * 80 + "@" + "y" * 60 + ".example",
                   "smtp_authentication_type": "Login", "smtp_tls_verify": "Pinned",
                   "smtp_tls_pin_sha256": "AB:" * 40})
        self.save_and_wait()
        width = self.driver.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
        self.assertLessEqual(width[0], width[1], "the form widens the page at 390 px")


FOCUS_RING = """
  const el = document.activeElement, cs = getComputedStyle(el);
  const alpha = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return 1;
                         const p = m[1].split(/[ ,\\/]+/).filter(Boolean); return p.length > 3 ? parseFloat(p[3]) : 1; };
  return {id: el.id || el.tagName + ':' + (el.textContent || '').trim().slice(0, 20),
          style: cs.outlineStyle, width: parseFloat(cs.outlineWidth), alpha: alpha(cs.outlineColor)};"""


class FocusRingTests(BrowserTestCase):

    def test_everything_the_keyboard_reaches_shows_a_solid_ring(self):
        for width, height, mobile in ((1280, 900, False), (390, 844, True)):
            set_viewport(self.driver, width, height, mobile)
            save_via_api(BASELINE)
            self.open_page()
            self.set_value("smtp_authentication_type", "Login")
            self.driver.execute_script("document.getElementById('advanced').open = true; document.activeElement.blur()")
            self.driver.find_element(By.TAG_NAME, "body").click()
            faint, seen, first = [], set(), None
            # Round the whole tab order once: the history's Restore buttons alone can be
            # dozens after a long suite, so the bound is generous and the loop stops when
            # focus comes back to where it started.
            for _ in range(400):
                ActionChains(self.driver).send_keys(Keys.TAB).perform()
                ring = self.driver.execute_script(FOCUS_RING)
                if ring["id"].startswith("BODY:"):
                    continue  # the document itself, between the last element and the first
                if first is None:
                    first = ring["id"]
                elif ring["id"] == first and len(seen) > 15:
                    break
                if ring["id"] in seen:
                    continue
                seen.add(ring["id"])
                if ring["style"] in ("none", "hidden") or ring["width"] < 2 or ring["alpha"] < 1:
                    faint.append(ring)
            self.assertGreater(len(seen), 15, "Tab reached too few elements")
            for field in ("from_address", "smtp_host", "smtp_port", "smtp_connection_type", "smtp_password", "save"):
                self.assertIn(field, seen, f"Tab never reached {field}")
            self.assertEqual(faint, [], f"faint or missing focus rings at {width} px")
        set_viewport(self.driver, 1280, 900, False)


if __name__ == "__main__":
    unittest.main()
