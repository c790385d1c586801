"""The switch's web side: the 3-D Secure directory's two endpoints (server to server, signed per link)."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from tasdid.core import threeds
from tasdid.core.http import signed_json

from . import directory


def _refused(exc: threeds.MessageError, *, message_type: str, link: threeds.Link) -> HttpResponse:
    code = directory.ERR_SIGNATURE if isinstance(exc, threeds.SignatureError) else directory.ERR_MESSAGE_INVALID
    return signed_json(threeds.erro(component="D", message_type=message_type, code=code,
                                    description="Message not accepted", detail=str(exc)), link=link, status=400)


@csrf_exempt  # server to server: the AReq's signature (the gateway <-> switch key) is checked instead of CSRF
@sensitive_variables()  # the AReq carries the card number
@require_POST
def areq(request: HttpRequest) -> HttpResponse:
    """From the 3DS Server: a signed AReq, answered by the ACS's ARes (or an Erro), signed for the 3DS Server."""
    try:
        message = threeds.verify_body(request.body, request.headers.get(threeds.SIGNATURE_HEADER),
                                      message_type="AReq", link=directory.TO_SERVER)
    except threeds.MessageError as exc:
        return _refused(exc, message_type="AReq", link=directory.TO_SERVER)
    answer = directory.relay_areq(message)
    return signed_json(answer.message, link=directory.TO_SERVER, status=answer.status)


@csrf_exempt  # server to server: the RReq's signature (the switch <-> bank key) is checked instead of CSRF
@require_POST
def rreq(request: HttpRequest) -> HttpResponse:
    """From an ACS: a signed RReq, answered by the 3DS Server's RRes (or an Erro), signed for the ACS."""
    try:
        message = threeds.verify_body(request.body, request.headers.get(threeds.SIGNATURE_HEADER),
                                      message_type="RReq", link=directory.TO_ACS)
    except threeds.MessageError as exc:
        return _refused(exc, message_type="RReq", link=directory.TO_ACS)
    answer = directory.relay_rreq(message)
    return signed_json(answer.message, link=directory.TO_ACS, status=answer.status)
