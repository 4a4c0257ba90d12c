"""The page's rules (www/js/schema.js) in the browser: the schema the server serves,
what the page checks alone (localErrors), and the server's own verdict through
POST /api/setup/email_smtp/validate (validateRemote) on every case of
Tests/Fixtures/settings/edge-cases.json — the file the Swift tests run through the
validator — so the page and a save agree."""

import json
import os
import unittest

from support import BrowserTestCase, env

EDGE_CASES = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "settings", "edge-cases.json")


class RulesTests(BrowserTestCase):

    def setUp(self):
        self.open_page()

    def run_schema(self, script, *args):
        return self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const args = Array.from(arguments).slice(0, -1);
            Promise.all([import('./js/schema.js'), import('./js/api.js')])
              .then(async ([s, a]) => done(await (%s)(s, a.api, ...args)))
              .catch(e => done('failed: ' + e));""" % script, *args)

    def test_schema_gives_labels_defaults_and_ranges(self):
        got = self.run_schema("""async (s, api) => { const schema = await s.loadSchema(api);
            return {label: schema.label('smtp_port'), defaults: schema.defaults(),
                    port: schema.field('smtp_port'), keys: schema.fields.map(f => f.key)}; }""")
        self.assertEqual(got["label"], "Port")
        self.assertEqual(got["defaults"]["smtp_port"], "25")
        self.assertEqual(got["defaults"]["smtp_tls_verify"], "Full")
        self.assertNotIn("smtp_password", got["defaults"], "secrets have no default to show")
        self.assertEqual((got["port"]["min"], got["port"]["max"]), (1, 65535))
        self.assertEqual(got["keys"][:3], ["from_address", "smtp_host", "smtp_port"])

    def test_value_names_are_the_served_short_labels(self):
        # The cut ("None: no sign-in" -> "None") is the server's (SettingsSchema.valueLabel), served as short_label.
        got = self.run_schema("""async (s, api) => { const schema = await s.loadSchema(api);
            return ['Login', 'Auto', 'None'].map(v => s.labelOfValue(schema, 'smtp_authentication_type', v))
              .concat([s.labelOfValue(s.makeSchema([{key: 'k', values: [{value: 'x', label: 'Cut: here', short_label: 'Served'}]}]), 'k', 'x')]); }""")
        self.assertEqual(got, ["LOGIN", "Automatic", "None", "Served"])

    def test_local_errors_need_no_server(self):
        base = {"from_address": "a@example.com", "smtp_host": "smtp.example.com", "smtp_port": "587",
                "smtp_connection_type": "STARTTLS", "smtp_connect_timeout": "10", "smtp_command_timeout": "30"}
        cases = [
            ({}, []),
            ({"smtp_port": "0"}, ["smtp_port"]), ({"smtp_port": "65536"}, ["smtp_port"]),
            ({"smtp_port": "25.5"}, ["smtp_port"]), ({"smtp_port": "0587"}, ["smtp_port"]),
            ({"smtp_port": "65535"}, []),
            ({"smtp_connect_timeout": "121"}, ["smtp_connect_timeout"]), ({"smtp_connect_timeout": "120"}, []),
            ({"smtp_command_timeout": "600"}, []), ({"smtp_command_timeout": "601"}, ["smtp_command_timeout"]),
            ({"smtp_host": "smtp.example.com\r\nRCPT TO:<x@y>"}, ["smtp_host"]),
            ({"smtp_host": ""}, ["smtp_host"]), ({"from_address": ""}, ["from_address"]),
            ({"smtp_connection_type": "SSLv3"}, ["smtp_connection_type"]),
            ({"smtp_connection_type": "tls"}, []),
            ({"smtp_username": "u" * 1025}, ["smtp_username"]),
            ({"from_address": "  a@example.com  "}, []),
        ]
        results = self.run_schema("""async (s, api, base, cases) => { const schema = await s.loadSchema(api);
            return cases.map(c => s.localErrors(schema, {...base, ...c})); }""", base, [c for c, _ in cases])
        for (change, expected), got in zip(cases, results):
            self.assertEqual(sorted(got), sorted(expected), f"localErrors({change!r}): {got}")
        self.assertEqual(results[1]["smtp_port"], "Port must be a whole number from 1 to 65535.",
                         "the page's words are the server's")

    def test_edge_cases_through_the_validate_endpoint(self):
        with open(EDGE_CASES, encoding="utf-8") as f:
            cases = json.load(f)
        # A complete submission (defaults under the case, no secrets): the stack's saved settings play no part.
        results = self.run_schema("""async (s, api, cases) => { const schema = await s.loadSchema(api);
            const out = [];
            for (const c of cases) {
              const data = {...schema.defaults(), smtp_password: '', oauth_client_secret: '', ...c.data};
              out.push(await s.validateRemote(api, data));
            }
            return out; }""", cases)
        self.assertIsInstance(results, list, results)
        for case, got in zip(cases, results):
            name = case["name"]
            self.assertEqual(sorted(got["errors"]), sorted(case["errors"]), f"{name}: errors {got['errors']}")
            self.assertEqual(sorted(got["warnings"]), sorted(case["warnings"]), f"{name}: warnings {got['warnings']}")
            self.assertEqual(sorted(got["fixes"]), sorted(case["fixes"]), f"{name}: fixes {got['fixes']}")
            self.assertEqual(got["valid"], not case["errors"], name)


if __name__ == "__main__":
    unittest.main()
