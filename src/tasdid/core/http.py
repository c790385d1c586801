"""HTTP plumbing every party uses: which party a request is for, its own session cookie and sessions bound to
it, CSP for cross-party form posts, the auto-submitted form that carries a browser from one party to another,
the error pages' context, and the client of its calls to the other parties."""

import functools
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from http.cookies import Morsel
from importlib import import_module
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import set_urlconf
from django.utils.translation import gettext as _

from . import threeds

logger = logging.getLogger(__name__)

PARTY_ENVIRON_KEY = "tasdid.party"
PARTIES = ("biller", "gateway", "bank", "switch")


def party_of(request: HttpRequest) -> str:
    return request.META.get(PARTY_ENVIRON_KEY, "biller")


def party_cookie_name(party: str) -> str:
    return f"tasdid_{party}_session"


class PartyMiddleware:
    """Route a request to its party's URLs and give each party its own session cookie.

    The parties of the demo share a host (127.0.0.1) and browsers do not separate cookies by port, so each
    party's session cookie carries the party's name; the session middleware behind this one sees it under
    the standard name. Placed before SessionMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        party = party_of(request)
        request.party = party
        request.urlconf = settings.PARTY_URLCONFS[party]
        # Now, not only when the view is resolved: a middleware's error (a bad Host header) is answered with
        # an error page that reverses the party's own URLs and uses the party's handler500.
        set_urlconf(request.urlconf)
        own = party_cookie_name(party)
        standard = settings.SESSION_COOKIE_NAME
        cookies = {k: v for k, v in request.COOKIES.items() if k != standard}
        if own in cookies:
            cookies[standard] = cookies.pop(own)
        request.COOKIES = cookies
        response = self.get_response(request)
        if standard in response.cookies:
            morsel = response.cookies.pop(standard)
            renamed = Morsel()
            renamed.set(own, morsel.value, morsel.coded_value)
            renamed.update(morsel)
            response.cookies[own] = renamed
        return response


# The party a session belongs to, written into the session itself.
SESSION_PARTY_KEY = "_tasdid_party"


@functools.cache
def party_session_store(store_class: type[SessionBase]) -> type[SessionBase]:
    """``store_class`` (settings.SESSION_ENGINE's) bound to one party: a session records the party it was made
    for, and a session presented under another party's cookie (a cookie value copied from one party's cookie to
    another's) is read as an empty one, under no key, so that writing to it makes a new session and leaves the
    other party's as it was."""

    class PartySessionStore(store_class):
        party: str | None = None

        @property
        def key_salt(self) -> str:
            # The engine's own salt (it names the class), so that its tools (Session.get_decoded) read these too.
            return "django.contrib.sessions." + store_class.__qualname__

        def load(self):
            data = super().load()
            if data.get(SESSION_PARTY_KEY) != self.party:
                self._session_key = None
                return {}
            return data

        def save(self, must_create=False):
            self._get_session(no_load=must_create)[SESSION_PARTY_KEY] = self.party
            super().save(must_create=must_create)

    PartySessionStore.__name__ = PartySessionStore.__qualname__ = f"Party{store_class.__name__}"
    return PartySessionStore


def party_session(party: str, session_key: str | None = None) -> SessionBase:
    """The session store of ``party`` for ``session_key`` (a new session without one)."""
    store = party_session_store(import_module(settings.SESSION_ENGINE).SessionStore)(session_key)
    store.party = party
    return store


class PartySessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware with sessions bound to the party they were made for (party_session_store).
    Replaces it in settings.MIDDLEWARE, after PartyMiddleware."""

    def process_request(self, request: HttpRequest) -> None:
        request.session = party_session(party_of(request), request.COOKIES.get(settings.SESSION_COOKIE_NAME))


def party_context(request: HttpRequest) -> dict:
    party = party_of(request)
    return {"party": party, "party_base": party_base_template(party), "sandbox": settings.SANDBOX}


def party_base_template(party: str) -> str:
    """The template a party's pages extend (settings.PARTY_BASE_TEMPLATES), for the shared error pages."""
    return settings.PARTY_BASE_TEMPLATES.get(party, "core/base.html")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allow_form_action(response: HttpResponse, urls: Iterable[str]) -> HttpResponse:
    """Let this page post a form to other origins (CSP form-action), and to nothing else."""
    origins = sorted({origin_of(u) for u in urls})
    update = getattr(response, "_csp_update", None) or {}
    update["form-action"] = [*update.get("form-action", []), *origins]
    response._csp_update = update
    return response


def autosubmit(
    request: HttpRequest,
    *,
    action: str,
    fields: Mapping[str, str],
    title: str,
    message: str = "",
    button: str = "",
) -> HttpResponse:
    """A page whose form posts ``fields`` to ``action`` by itself (a static script; a button without it)."""
    response = render(
        request,
        "core/autosubmit.html",
        {
            "action": action,
            "fields": list(fields.items()),
            "title": title,
            "message": message or _("Redirection en cours, veuillez patienter…"),
            "button": button or _("Continuer"),
        },
    )
    return allow_form_action(no_store(response), [action])


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind a proxy, the last hop that a trusted proxy added."""
    trusted = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if trusted:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR", "")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 of every party: the French 500 page under the party's header.

    Rendered without context processors, which may need the database (the user, the messages, the session) that
    has perhaps just failed; the page gets the party and its base template only. Should that fail too (the
    party's template cannot render here), the plain page.
    """
    party = party_of(request)
    for base in (party_base_template(party), "core/base.html"):
        try:
            html = loader.render_to_string("500.html", {"party": party, "party_base": base})
        except Exception:  # a failing header must not hide the error page itself
            logger.exception("500 page under %s failed to render", base)
            continue
        return HttpResponseServerError(html)
    return HttpResponseServerError(_("Erreur technique. Veuillez réessayer dans quelques instants."),
                                   content_type="text/plain; charset=utf-8")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The form expired or came from elsewhere: say so in French, and offer a way back."""
    return render(request, "core/csrf_failure.html", status=403)


def no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def see_other(url: str) -> HttpResponseRedirect:
    """303: after a form post, the browser GETs ``url`` (a reload does not post again)."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def signed_json(message: dict, *, link: tuple[str, str], status: int = 200) -> HttpResponse:
    """A 3-D Secure message answered server to server: JSON signed in its header with the key of ``link``
    (``threeds.sign_body``)."""
    body, signature = threeds.sign_body(message, link=link)
    response = HttpResponse(body, status=status, content_type="application/json")
    response[threeds.SIGNATURE_HEADER] = signature
    return no_store(response)


# --- calls to the other parties -----------------------------------------------------------------------------

# Connections idle longer than this are closed by the client first: the parties' web servers (gunicorn) close theirs
# after 2 s, and a request sent on a connection the server is closing at that moment would be lost.
KEEPALIVE_SECONDS = 1.0

_client_lock = threading.Lock()
_client: tuple[int, httpx.Client] | None = None  # (the pid it was made in, the client)


def party_client() -> httpx.Client:
    """This process's client for its server-to-server calls: one TLS context (made once, not per call: building
    one reads the system's CA store) and kept-alive connections to each party. Shared by the process's threads
    (an httpx.Client's pool is thread-safe); a forked child (a gunicorn worker, when the application is loaded
    before forking) makes its own on its first call and leaves its parent's connections alone."""
    global _client
    pid = os.getpid()
    current = _client
    if current is not None and current[0] == pid:
        return current[1]
    with _client_lock:
        if _client is None or _client[0] != pid:
            # No timeout of its own: each call passes the one it has always had.
            _client = (pid, httpx.Client(timeout=None, follow_redirects=False,  # noqa: S113 - set per call
                                         limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)))
        return _client[1]


def party_post(url: str, **kwargs) -> httpx.Response:
    """``httpx.post(url, **kwargs)`` over the process's long-lived client (``party_client``); the caller gives
    the timeout."""
    return party_client().post(url, **kwargs)
