"""PINless calling with service password: prepaid calling authenticated by the caller's
number alone, the account's service password confirming it (Maintenance Release 22's
"PINless dialing application with password protection").

It is the prepaid application with other defaults: ANI authentication on, manual card
entry off, service password check on. Every prepaid option applies.
"""

from __future__ import annotations

from portaum_tx.ivr.apps import application
from portaum_tx.ivr.apps.prepaid import OPTIONS as PREPAID_OPTIONS, prepaid

DEFAULTS = {"ani_authentication": True, "manual_authentication": False,
            "check_service_password": True}

OPTIONS = tuple((name, kind, DEFAULTS.get(name, default), *rest)
                for name, kind, default, *rest in PREPAID_OPTIONS)


@application("pinless")
async def pinless(call, context, options: dict) -> None:
    await prepaid(call, context, {**DEFAULTS, **options})


pinless.OPTIONS = OPTIONS
