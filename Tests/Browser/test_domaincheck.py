"""The domain check on the page: after a successful test email its findings appear
beside the test result (the sender domain's SPF, DKIM and DMARC, from the run's nsd
serving Tests/Fixtures/dns), and "Check my domain" shows them on demand, with the
record to publish. Needs POST email_test and email_domain_check, and dns_servers."""

import uuid

from selenium.webdriver.common.by import By

from support import BASELINE, BrowserTestCase, SmtpSink, save_via_api, set_viewport


def relay(port, **extra):
    return {**BASELINE, "smtp_host": "127.0.0.1", "smtp_port": str(port), "smtp_connection_type": "None",
            "smtp_authentication_type": "None", "smtp_tls_verify": "Full", **extra}


class DomainCheckTests(BrowserTestCase):

    def test_findings_appear_beside_a_successful_test_result(self):
        with SmtpSink() as sink:
            save_via_api(relay(sink.port, from_address="noreply@dmarc-reject-nodkim.example.test"))
            self.open_page()
            self.set_value("test_address", f"admin-{uuid.uuid4().hex[:6]}@example.net")
            result = self.run_probe("test-button")
            self.assertIn("ok", result.get_attribute("class").split(), result.text)
            self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#probe-result .domain-check"),
                            "the domain check appeared beside the test result")
            box = self.driver.find_element(By.CSS_SELECTOR, "#probe-result .domain-check")
            self.assertIn("dmarc-reject-nodkim.example.test", box.find_element(By.TAG_NAME, "h3").text)
            # SPF passes from 127.0.0.1; DMARC p=reject without a DKIM key is a warning.
            self.assertEqual(box.get_attribute("data-state"), "warn", box.text)
            topics = {li.get_attribute("data-topic") for li in box.find_elements(By.CSS_SELECTOR, "li.finding")}
            self.assertEqual(topics, {"spf", "dkim", "dmarc"}, box.text)
            dmarc = [li for li in box.find_elements(By.CSS_SELECTOR, "li.finding[data-topic=dmarc]")
                     if li.get_attribute("data-severity") == "warning"]
            self.assertTrue(dmarc and "forwarded" in dmarc[0].text, box.text)
            sink.wait_for_message()

    def test_check_my_domain_shows_the_record_to_publish(self):
        save_via_api({**BASELINE, "from_address": "noreply@spf-two.example.test"})
        self.open_page()
        self.click("domain-check-button")
        self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#domain-check-result .domain-check"),
                        "the domain check answered")
        box = self.driver.find_element(By.CSS_SELECTOR, "#domain-check-result .domain-check")
        self.assertEqual(box.get_attribute("data-state"), "bad", box.text)
        error = box.find_element(By.CSS_SELECTOR, "li.finding[data-severity=error][data-topic=spf]")
        self.assertIn("2 SPF records", error.text)
        # The merged record, ready to copy.
        self.assertIn("v=spf1 ip4:127.0.0.0/8 ip4:192.0.2.0/24 -all", error.find_element(By.CSS_SELECTOR, ".publish").text)
        # Long records and the include tree, opened, never widen the page at phone width.
        for details in box.find_elements(By.TAG_NAME, "details"):
            self.driver.execute_script("arguments[0].open = true", details)
        set_viewport(self.driver, 390, 844, True)
        try:
            wide, inner = self.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(wide, inner, f"the domain check makes the page {wide} px wide at 390 px")
        finally:
            set_viewport(self.driver, 1280, 900, False)
