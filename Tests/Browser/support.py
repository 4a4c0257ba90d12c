"""Shared fixtures of the browser tests: the environment the test command sets,
a real headless Chromium through chromedriver, the API (for arranging state and
reading it back), the private MariaDB, and SMTP servers on 127.0.0.1.

Nothing here is a mock: the page talks to nginx, the responder and MariaDB that
scripts/test started. Unset environment variables fail the run loudly.
"""

import base64
import json
import os
import shlex
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REQUIRED = ("EMAILSETUP_TEST_PORT", "EMAILSETUP_TEST_ADMIN_USER", "EMAILSETUP_TEST_ADMIN_PASSWORD",
            "EMAILSETUP_TEST_ROOT", "EMAILSETUP_TEST_STATE_DIR")


class Env:
    """The running stack, from the variables scripts/test exports."""

    def __init__(self):
        missing = [k for k in REQUIRED if not os.environ.get(k)]
        if missing:
            raise RuntimeError(
                "browser tests need the running stack that scripts/test starts; unset: " + ", ".join(missing)
                + ". Run them through scripts/test (or scripts/lib/browser-tests.sh with those variables set).")
        self.port = int(os.environ["EMAILSETUP_TEST_PORT"])
        self.user = os.environ["EMAILSETUP_TEST_ADMIN_USER"]
        self.password = os.environ["EMAILSETUP_TEST_ADMIN_PASSWORD"]
        self.root = os.environ["EMAILSETUP_TEST_ROOT"]
        self.state_dir = os.environ["EMAILSETUP_TEST_STATE_DIR"]
        self.base = f"http://127.0.0.1:{self.port}/"

    @property
    def authorization(self):
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


_env = None


def env():
    global _env
    if _env is None:
        _env = Env()
    return _env


# ---------------------------------------------------------------- API

class ApiAnswer:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def data(self):
        return self.body.get("data", {}) if isinstance(self.body, dict) else {}

    @property
    def etag(self):
        return self.headers.get("ETag")


def api(method, path, body=None, if_match=None, timeout=60):
    """One request to /api/setup/PATH through nginx, authenticated as the admin."""
    e = env()
    headers = {"Authorization": e.authorization, "Accept": "application/json"}
    data = None
    if method != "GET":
        headers["X-Requested-With"] = "EmailSetup"
        headers["Content-Type"] = "application/json"
        data = json.dumps(body if body is not None else {}).encode()
    if if_match:
        headers["If-Match"] = if_match
    request = urllib.request.Request(e.base + "api/setup/" + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status, hdrs = response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, hdrs = error.read(), error.code, error.headers
    try:
        parsed = json.loads(raw.decode() or "null")
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return ApiAnswer(status, parsed, hdrs)


def settings():
    answer = api("GET", "email_smtp")
    assert answer.status == 200, f"GET email_smtp answered {answer.status}: {answer.body}"
    return answer


BASELINE = {
    "from_address": "baseline@example.com", "smtp_host": "baseline.example.com", "smtp_port": "587",
    "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "None", "smtp_username": "",
    "smtp_tls_verify": "Full", "smtp_tls_pin_sha256": "", "smtp_tls_ca_pem": "",
    "smtp_connect_timeout": "10", "smtp_command_timeout": "30",
}


def save_via_api(values, password=None):
    """Saves settings through the API (arranging a test's starting point)."""
    current = settings()
    data = dict(values)
    if password is not None:
        data["smtp_password"] = password
    answer = api("POST", "email_smtp", {"data": data}, if_match=current.etag)
    assert answer.status == 200, f"arranging settings failed with {answer.status}: {answer.body}"
    return answer


# ---------------------------------------------------------------- database

def _db_connection():
    """The private MariaDB's client arguments (socket, user, database) and an
    environment with the application user's password, from scripts/lib/mariadb.sh."""
    e = env()
    script = os.path.join(e.root, "scripts", "lib", "mariadb.sh")
    exports = subprocess.run([script, "env", e.state_dir], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in exports.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    with open(values["EMAILSETUP_DB_PASSWORD_FILE"]) as f:
        db_password = f.read().strip()
    args = ["--no-defaults", "--protocol=socket", "--socket=" + values["EMAILSETUP_DB_SOCKET"], "-u" + values["EMAILSETUP_DB_USER"]]
    return args, values["EMAILSETUP_DB_NAME"], {**os.environ, "MYSQL_PWD": db_password}


def db_dump(*tables):
    """Rows of the application's database as SQL text (mariadb-dump): every table,
    or only `tables`. For checking that a secret never reached it in clear, and
    for putting tables back as they were (`first_run`)."""
    args, name, environment = _db_connection()
    result = subprocess.run(
        ["mariadb-dump", *args, "--skip-comments", "--no-create-info", "--single-transaction", "--skip-lock-tables",
         "--skip-triggers", "--skip-add-locks", "--skip-disable-keys", "--complete-insert", name, *tables],
        capture_output=True, text=True, env=environment, timeout=60)
    if result.returncode != 0:
        raise AssertionError("mariadb-dump failed: " + result.stderr.strip())
    return result.stdout


def db_execute(sql):
    """Runs SQL (one or more statements) in the stack's private MariaDB as the application's user."""
    args, name, environment = _db_connection()
    result = subprocess.run(["mariadb", *args, name], input=sql, capture_output=True, text=True, env=environment, timeout=60)
    if result.returncode != 0:
        raise AssertionError("mariadb failed: " + result.stderr.strip())


# The settings labels of `information` (the larger system's table keeps its other rows).
SETTINGS_LABELS = ("from_address", "smtp_username", "smtp_password", "smtp_host", "smtp_port",
                   "smtp_connection_type", "smtp_authentication_type", "smtp_tls_verify", "smtp_tls_pin_sha256",
                   "smtp_tls_ca_pem", "smtp_connect_timeout", "smtp_command_timeout", "smtp_settings_version")
# What a first run has none of. The audit log goes too: its test rows name settings
# versions, and versions count from 1 again after a first run, so an old row of a
# successful test email would make "last known good" point at a version that now
# means other settings (or does not exist yet).
FIRST_RUN_TABLES = ("settings_history", "audit_log", "oauth_access_tokens", "oauth_pending")


def first_run(test):
    """A first run for one test: no settings, no history, no audit log, no OAuth
    sign-in, as on a fresh installation. Everything is put back as it was when the
    test ends (a cleanup of `test`), so later tests find the versions, history and
    audit rows the earlier ones left."""
    tables = ("information",) + FIRST_RUN_TABLES
    saved = db_dump(*tables)
    test.addCleanup(db_execute, "START TRANSACTION;\n" + "".join(f"DELETE FROM {t};\n" for t in tables)
                    + saved + "\nCOMMIT;\n")
    labels = ", ".join("'%s'" % k for k in SETTINGS_LABELS)
    db_execute(f"START TRANSACTION; DELETE FROM information WHERE label IN ({labels}) OR label LIKE 'oauth\\_%';"
               + "".join(f" DELETE FROM {t};" for t in FIRST_RUN_TABLES) + " COMMIT;")
    assert str(settings().data.get("smtp_settings_version")) == "0", "the settings were not forgotten"
    assert api("GET", "email_history").data.get("last_known_good_version") is None, "a last known good version is left"


# ---------------------------------------------------------------- SMTP servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self, tls_context=None, require_starttls=False):
        from aiosmtpd.controller import Controller

        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                      "content": envelope.original_content or envelope.content})
                return "250 Message accepted for delivery"

        self.port = free_port()
        kwargs = {}
        if tls_context is not None:
            kwargs = {"tls_context": tls_context, "require_starttls": require_starttls}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, server_hostname="sink.test",
                                     ready_timeout=10, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def wait_for_message(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.messages:
                return self.messages[-1]
            time.sleep(0.2)
        raise AssertionError("no message arrived at the SMTP server within %d s" % timeout)


def self_signed_context(directory, name="sink.test"):
    """A TLS server context with a fresh self-signed certificate for `name`."""
    key, cert = os.path.join(directory, "sink-key.pem"), os.path.join(directory, "sink-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name],
                   check=True, capture_output=True)
    fingerprint = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
                                 check=True, capture_output=True, text=True).stdout
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, fingerprint.split("=", 1)[1].strip().replace(":", "").lower()


class SilentServer:
    """Accepts TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.5)
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped = True
        for c in self.held:
            c.close()
        self.sock.close()


# ---------------------------------------------------------------- browser

def make_driver(width=1280, height=900, mobile=False, extra_args=()):
    """A headless Chromium; `extra_args` for the few tests that need more (the
    OAuth test visits the authorization server's HTTPS pages made with a test CA)."""
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    # nginx basic auth: the Authorization header on every request of this browser.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": env().authorization}})
    set_viewport(driver, width, height, mobile)
    return driver


def set_viewport(driver, width, height, mobile=False):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


class BrowserTestCase(unittest.TestCase):
    """One Chromium per test class; every test starts on a freshly loaded page."""

    driver = None

    @classmethod
    def setUpClass(cls):
        env()  # fail loudly before starting a browser
        cls.driver = make_driver()

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            cls.driver.quit()

    def tearDown(self):
        # A failed test leaves its console output in the log, for the reader.
        try:
            problems = [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        except Exception:  # noqa: BLE001 — the log is a courtesy
            problems = []
        for entry in problems:
            print("browser console:", entry.get("message"))

    # -- navigation

    def open_page(self):
        d = self.driver
        # Leave any page with unsaved changes without its beforeunload prompt.
        try:
            d.execute_script("window.onbeforeunload = null; window.__leaving = true;"
                             "window.addEventListener('beforeunload', e => e.stopImmediatePropagation(), true);")
        except Exception:  # noqa: BLE001 — no page yet
            pass
        d.get(env().base)
        self.wait_until(lambda: not d.find_element(By.ID, "settings-form").get_attribute("hidden")
                        or d.find_element(By.ID, "banner").is_displayed(), "the page loaded the settings")
        self.assertFalse(d.find_element(By.ID, "banner").is_displayed(),
                         "the page shows an error after loading: " + d.find_element(By.ID, "banner").text)

    def wait_until(self, condition, what, timeout=15):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: condition())
        except TimeoutException:
            self.fail(f"timed out after {timeout} s waiting until {what}")

    # -- elements

    def el(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def set_value(self, element_id, value):
        """Types into an input like a user: select all, replace."""
        element = self.el(element_id)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        if element.tag_name == "select":
            from selenium.webdriver.support.ui import Select
            Select(element).select_by_value(value)
            return
        # A field under the closed "Advanced" disclosure: open it, as a user would.
        self.driver.execute_script("const d = arguments[0].closest('details'); if (d) d.open = true", element)
        element.clear()
        if value:
            element.send_keys(value)
        else:
            # clear() fires no input event; one keystroke pair does.
            element.send_keys("x")
            from selenium.webdriver.common.keys import Keys
            element.send_keys(Keys.BACK_SPACE)

    def fill(self, values):
        # Selects first: they show and hide other fields.
        for key in ("smtp_authentication_type", "smtp_tls_verify", "smtp_connection_type"):
            if key in values:
                self.set_value(key, values[key])
        for key, value in values.items():
            if key in ("smtp_authentication_type", "smtp_tls_verify", "smtp_connection_type"):
                continue
            self.set_value(key, value)

    def click(self, element_id):
        element = self.el(element_id)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def save_and_wait(self):
        self.click("save")
        self.wait_until(lambda: self.el("save-status").text.startswith(("Saved", "Not saved")) or self.el("banner").is_displayed(),
                        "the save finished")
        return self.el("save-status").text

    def error_of(self, field):
        """The error shown next to a field, checked to be wired for assistive technology."""
        element = self.el(field)
        if element.get_attribute("aria-invalid") != "true":
            return None
        described = (element.get_attribute("aria-describedby") or "").split()
        self.assertIn(field + "-error", described, f"{field}'s error is not in its aria-describedby")
        return self.el(field + "-error").text

    def warning_of(self, field):
        element = self.el(field)
        described = (element.get_attribute("aria-describedby") or "").split()
        if field + "-warning" not in described:
            return None
        return self.el(field + "-warning").text

    # -- test email and check

    def run_probe(self, button_id, timeout=60):
        """Clicks Check connection or Send test email and returns the result box.
        The backend allows 10 tests and checks a minute per user (the Swift suite
        uses some just before): on a 429 the page counts down and re-enables the
        buttons, and this waits for that and tries once more."""
        for attempt in range(2):
            self.wait_until(lambda: self.el(button_id).is_enabled(), "the button is enabled", timeout=70)
            self.click(button_id)
            self.wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, "#probe-result .result")
                            or self.el("test_address").get_attribute("aria-invalid") == "true",
                            "a result appeared", timeout=timeout)
            boxes = self.driver.find_elements(By.CSS_SELECTOR, "#probe-result .result")
            if not boxes or "rate-limited" not in boxes[0].get_attribute("class").split() or attempt:
                return boxes[0] if boxes else None
            print("rate limited; waiting for the page's countdown:", boxes[0].text.replace("\n", " "))
        return None

    # -- watching the page's requests

    def record_requests(self):
        """Wraps window.fetch so every request body the page sends is kept in
        window.__requests (and every answer's text in window.__answers)."""
        self.driver.execute_script("""
            window.__requests = []; window.__answers = [];
            const original = window.fetch;
            window.fetch = async function (url, init) {
              window.__requests.push({url: String(url), method: (init && init.method) || 'GET',
                                      body: init && init.body ? String(init.body) : null,
                                      headers: init && init.headers ? init.headers : {}});
              const response = await original.apply(this, arguments);
              response.clone().text().then(t => window.__answers.push({url: String(url), status: response.status, body: t}));
              return response;
            };""")

    def requests(self, path_part):
        return [r for r in self.driver.execute_script("return window.__requests || []") if path_part in r["url"]]
