"""A small HTTP "browser" for the flow tests: httpx over real TCP to the parties' live servers, one cookie jar for
all of them (as a browser on 127.0.0.1 has), and the forms of each page read from its HTML."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

# Phrasing elements: text around them runs on as it is written.
INLINE_TAG = re.compile(r"</?(?:a|abbr|b|bdi|bdo|cite|code|em|i|kbd|mark|q|s|samp|small|span|strong|sub|sup|time|u|"
                        r"var)\b[^>]*>", re.I)


@dataclass
class Form:
    action: str
    method: str
    attrs: dict[str, str]
    # Successful controls as a browser would send them (hidden and text inputs, checked boxes, selected options).
    fields: list[tuple[str, str]] = field(default_factory=list)
    # Submit buttons: (name, value, text).
    buttons: list[tuple[str, str, str]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    @property
    def autosubmit(self) -> bool:
        return "data-autosubmit" in self.attrs

    def data(self, **values: str) -> dict[str, str]:
        """The form's current values, with ``values`` filled in (a name not in the form is an error)."""
        unknown = set(values) - self.names
        assert not unknown, f"the form has no field {sorted(unknown)}"
        data = dict(self.fields)
        data.update(values)
        return data

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


class _FormParser(HTMLParser):
    def __init__(self, base_url: str):
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._button: list | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            action = urljoin(self.base_url, a.get("action") or self.base_url)
            self._form = Form(action=action, method=(a.get("method") or "get").lower(), attrs=a)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        if tag == "input":
            kind = a.get("type", "text").lower()
            if name:
                form.names.add(name)
            if kind == "submit" and name:
                form.buttons.append((name, a.get("value", ""), a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if name and "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif name and kind not in ("button", "image", "reset", "file"):
                form.fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            form.names.add(name)
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a and not self._select_chosen:
                form.fields.append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea" and name:
            form.names.add(name)
            form.fields.append((name, ""))
        elif tag == "button":
            self._button = [a.get("name", ""), a.get("value", ""), "", a.get("type", "submit")]
            if name:
                form.names.add(name)

    def handle_data(self, data):
        if self._button is not None:
            self._button[2] += data

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "button":
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None and self._form is not None:
                self._form.fields.append((self._select, self._select_first))
            self._select = None
        elif tag == "button" and self._button is not None:
            name, value, text, kind = self._button
            if self._form is not None and kind == "submit":
                self._form.buttons.append((name, value, " ".join(text.split())))
            self._button = None


@dataclass
class Page:
    url: str
    status: int
    text: str
    headers: httpx.Headers

    @property
    def forms(self) -> list[Form]:
        parser = _FormParser(self.url)
        parser.feed(self.text)
        return parser.forms

    def form(self, *, button: str | None = None, action: str | None = None) -> Form:
        """The one form holding a button with that text (or posting to an action ending so)."""
        found = [f for f in self.forms
                 if (button is None or any(text == button for _n, _v, text in f.buttons))
                 and (action is None or f.action.endswith(action))]
        assert len(found) == 1, f"{len(found)} forms with button {button!r} / action {action!r} on {self.url}"
        return found[0]

    def link(self, text: str) -> str:
        """The address of the one link whose text is ``text``."""
        found = [urljoin(self.url, html.unescape(href)) for href, inner in
                 re.findall(r'(?s)<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', self.text)
                 if " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inner)).split()) == text]
        assert len(found) == 1, f"{len(found)} links {text!r} on {self.url}"
        return found[0]

    @property
    def autosubmit_form(self) -> Form:
        found = [f for f in self.forms if f.autosubmit]
        assert len(found) == 1, f"no auto-submitted form on {self.url} (HTTP {self.status}):\n{self.text[:3000]}"
        return found[0]

    @property
    def visible_text(self) -> str:
        """The page's text as a person reads it (scripts and styles removed, spaces collapsed): an inline element
        (« (code <span dir="ltr">51</span>) ») adds no space of its own, any other tag separates words."""
        body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", self.text)
        body = re.sub(INLINE_TAG, "", body)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())

    @property
    def title(self) -> str:
        match = re.search(r"(?s)<h1[^>]*>(.*?)</h1>", self.text)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split()) if match else ""


class Browser:
    """One person's browser: cookies kept per party (each party has its own cookie name), redirects followed."""

    def __init__(self) -> None:
        self.client = httpx.Client(follow_redirects=True, timeout=60,
                                   event_hooks={"response": [self._loopback_is_secure]})
        self.history: list[Page] = []

    def _loopback_is_secure(self, response: httpx.Response) -> None:
        """The parties set Secure cookies. Browsers send them to http://127.0.0.1 (a secure origin to them);
        http.cookiejar sends them over https only, so they lose the flag once received."""
        for cookie in self.client.cookies.jar:
            cookie.secure = False

    def close(self) -> None:
        self.client.close()

    def _page(self, response: httpx.Response) -> Page:
        page = Page(url=str(response.url), status=response.status_code, text=response.text,
                    headers=response.headers)
        self.history.append(page)
        return page

    def get(self, url: str) -> Page:
        return self._page(self.client.get(url))

    def post(self, url: str, data: dict[str, str] | list[tuple[str, str]]) -> Page:
        return self._page(self.client.post(url, data=data))

    def submit(self, form: Form, **values: str) -> Page:
        data = form.data(**values)
        if form.method == "get":
            return self._page(self.client.get(form.action, params=data))
        return self.post(form.action, data)

    def press(self, page: Page, button: str, **values: str) -> Page:
        """Fill in ``values`` and press the button labelled ``button`` on ``page``."""
        form = page.form(button=button)
        name, value, _text = next(b for b in form.buttons if b[2] == button)
        if name:
            form.fields.append((name, value))
            form.names.add(name)
        return self.submit(form, **values)

    def follow(self, page: Page) -> Page:
        """What the page's script does: post its auto-submitted form."""
        return self.submit(page.autosubmit_form)
