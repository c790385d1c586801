"""The switch's ISO 8583 profile and codec: ``tasdid.core.iso8583``, re-exported.

The codec is protocol knowledge that the gateway's acquirer client, the switch and the issuer hosts share;
since parties never import each other, it lives in ``core`` and the switch reads it from here. See
``tasdid.core.iso8583`` for the API.
"""

from tasdid.core.iso8583 import *  # noqa: F403
from tasdid.core.iso8583 import (  # noqa: F401 - the profile's constants, which ``*`` leaves out
    ECHO,
    MESSAGES,
    REQUESTS,
    RESPONSE_MTI,
    SIGN_OFF,
    SIGN_ON,
    __all__,
)
