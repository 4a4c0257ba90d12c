"""The user-facing pages of the test authorization server: the sign-in / consent page
at the authorize path and the device verification page. Plain HTML forms, no
JavaScript; element ids are what the browser tests click (`username`, `password`,
`user_code`, `approve`, `deny`, `message`)."""
from html import escape

from oauth_flavors import SIGN_IN_TITLE

STYLE = ("body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
         "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}"
         "button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}#message{color:#a00}")


def _page(title, body, status=200):
    html = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return html, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def _message(text):
    return f"<p id=\"message\" role=\"alert\">{escape(text)}</p>" if text else ""


def _credentials(username):
    return (f"<label for=\"username\">Email, phone, or Skype</label>"
            f"<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" "
            f"value=\"{escape(username or '')}\">"
            f"<label for=\"password\">Password</label>"
            f"<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">")


def _buttons(approve_label):
    return (f"<button type=\"submit\" id=\"approve\" name=\"action\" value=\"approve\">{escape(approve_label)}</button>"
            "<button type=\"submit\" id=\"deny\" name=\"action\" value=\"deny\">Cancel</button>")


def consent_page(flavor, action, client_name, scope, username="", message=""):
    """The sign-in form posting back to `action` (the authorize URL with its query)."""
    scopes = "".join(f"<li>{escape(s)}</li>" for s in (scope or "").split())
    body = (f"<h1>{escape(SIGN_IN_TITLE[flavor])}</h1>{_message(message)}"
            f"<p><strong>{escape(client_name)}</strong> wants to:</p><ul id=\"scopes\">{scopes}</ul>"
            f"<form method=\"post\" action=\"{escape(action)}\">{_credentials(username)}"
            f"{_buttons('Accept')}</form>")
    return _page(SIGN_IN_TITLE[flavor], body)


def device_page(flavor, user_code="", username="", message=""):
    body = (f"<h1>Enter code</h1>{_message(message)}"
            "<form method=\"post\" action=\"/device/verify\">"
            "<label for=\"user_code\">Enter the code displayed on your app or device</label>"
            f"<input id=\"user_code\" name=\"user_code\" type=\"text\" value=\"{escape(user_code or '')}\">"
            f"{_credentials(username)}{_buttons('Next')}</form>")
    return _page(SIGN_IN_TITLE[flavor], body)


def done_page(flavor, text):
    return _page(SIGN_IN_TITLE[flavor], f"<h1>{escape(text)}</h1><p id=\"done\">You may now close this window.</p>")


def error_page(flavor, text, status=400):
    return _page(SIGN_IN_TITLE[flavor], f"<h1>Sorry, but we're having trouble signing you in.</h1>{_message(text)}",
                 status)
