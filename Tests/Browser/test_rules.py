"""The page's own validation rules (www/js/rules.js), run in the browser by
importing the module, on the cases the server's validators decide — so the
page refuses what the server refuses and lets through what it accepts."""

import unittest

from support import BrowserTestCase

VALID_HOSTS = ["smtp.example.com", "localhost", "mail.example.com.", "192.0.2.10", "2001:db8::1",
               "[2001:db8::1]", "::1", "::ffff:192.0.2.1", "bücher.example", "xn--bcher-kva.example", "a-b.example"]
INVALID_HOSTS = ["", "bad host", " smtp.example.com x", "-mail.example.com", "mail_1.example.com", "1.2.3.999",
                 "010.0.0.1", "127.1", "fe80::1%eth0", "[2001:db8::1", "2001:db8:::1", "a..b", "x" * 64 + ".example"]
VALID_ADDRESSES = ["name@example.com", "first.last+tag@example.co.uk", "root@localhost", '"john smith"@example.com',
                   "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", "jörg@bücher.example"]
INVALID_ADDRESSES = ["", "name", "name@", "@example.com", "a@b@example.com", "name @example.com",
                     "<name@example.com>", "name@example.com.", "name@exa mple.com", ".name@example.com",
                     "na..me@example.com", "x" * 65 + "@example.com"]


class RulesTests(BrowserTestCase):

    def setUp(self):
        self.open_page()

    def run_rules(self, script, *args):
        return self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const args = Array.from(arguments).slice(0, -1);
            import('./js/rules.js').then(rules => done((%s)(rules, ...args)))
              .catch(e => done('import failed: ' + e));""" % script, *args)

    def test_hosts(self):
        results = self.run_rules("(r, hosts) => hosts.map(h => r.checkHost(h))", VALID_HOSTS + INVALID_HOSTS)
        for host, message in zip(VALID_HOSTS, results[:len(VALID_HOSTS)]):
            self.assertIsNone(message, f"{host!r} refused: {message}")
        for host, message in zip(INVALID_HOSTS, results[len(VALID_HOSTS):]):
            self.assertIsNotNone(message, f"{host!r} accepted")

    def test_addresses(self):
        results = self.run_rules("(r, a) => a.map(x => r.checkAddress(x))", VALID_ADDRESSES + INVALID_ADDRESSES)
        for address, message in zip(VALID_ADDRESSES, results[:len(VALID_ADDRESSES)]):
            self.assertIsNone(message, f"{address!r} refused: {message}")
        for address, message in zip(INVALID_ADDRESSES, results[len(VALID_ADDRESSES):]):
            self.assertIsNotNone(message, f"{address!r} accepted")

    def test_whole_form_rules(self):
        base = {"from_address": "a@example.com", "smtp_host": "smtp.example.com", "smtp_port": "587",
                "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "None", "smtp_username": "",
                "smtp_tls_verify": "Full", "smtp_tls_pin_sha256": "", "smtp_tls_ca_pem": "",
                "smtp_connect_timeout": "10", "smtp_command_timeout": "30"}
        cases = [
            ({}, []),
            ({"smtp_port": "0"}, ["smtp_port"]), ({"smtp_port": "65536"}, ["smtp_port"]),
            ({"smtp_port": "25.5"}, ["smtp_port"]), ({"smtp_port": "0587"}, ["smtp_port"]),
            ({"smtp_port": "65535"}, []),
            ({"smtp_connect_timeout": "121"}, ["smtp_connect_timeout"]), ({"smtp_connect_timeout": "120"}, []),
            ({"smtp_command_timeout": "600"}, []), ({"smtp_command_timeout": "601"}, ["smtp_command_timeout"]),
            ({"smtp_command_timeout": "0"}, ["smtp_command_timeout"]),
            ({"smtp_authentication_type": "Plain"}, ["smtp_username"]),
            ({"smtp_authentication_type": "Auto", "smtp_username": "u"}, []),
            ({"smtp_tls_verify": "Pinned"}, ["smtp_tls_pin_sha256"]),
            ({"smtp_tls_verify": "Pinned", "smtp_tls_pin_sha256": "AB:" * 31 + "AB"}, []),
            ({"smtp_tls_verify": "Pinned", "smtp_tls_pin_sha256": "ab" * 31}, ["smtp_tls_pin_sha256"]),
            ({"smtp_tls_pin_sha256": "zz" * 32}, ["smtp_tls_pin_sha256"]),
            ({"smtp_username": "a\nb", "smtp_authentication_type": "Login"}, ["smtp_username"]),
            ({"smtp_host": "smtp.example.com\r\nRCPT TO:<x@y>"}, ["smtp_host"]),
            ({"smtp_tls_ca_pem": "not a certificate"}, ["smtp_tls_ca_pem"]),
            ({"smtp_tls_ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}, []),
            ({"from_address": "  a@example.com  "}, []),
        ]
        results = self.run_rules("(r, base, cases) => cases.map(c => Object.keys(r.validate({...base, ...c})).sort())",
                                 base, [c for c, _ in cases])
        for (change, expected), got in zip(cases, results):
            self.assertEqual(got, sorted(expected), f"validate({change!r})")


if __name__ == "__main__":
    unittest.main()
