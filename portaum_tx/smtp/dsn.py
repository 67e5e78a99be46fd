"""Delivery status notifications (RFC 3464) for mail that could not be delivered.  Pure."""

from __future__ import annotations

import email.utils
import uuid
from typing import Sequence


def original_headers(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data[:end + 2] if end >= 0 else data


def build_bounce(*, reporting_mta: str, from_address: str, to_address: str,
                 failures: Sequence[tuple[str, str, str]], original: bytes,
                 arrival: float, now: float) -> bytes:
    """A multipart/report for ``failures``: ``(recipient, status, diagnostic)``
    such as ``("bob@example.com", "5.1.1", "550 5.1.1 no such user")``.

    Written out by hand: the email package has no builder for
    message/delivery-status bodies."""
    boundary = f"=_dsn_{uuid.uuid4().hex}"
    human = ["Your message could not be delivered to these recipients:", ""]
    for recipient, _, diagnostic in failures:
        human.append(f"  <{_clean(recipient)}>: {_clean(diagnostic)}")
    human += ["", "The headers of your message follow."]
    status = [f"Reporting-MTA: dns; {reporting_mta}",
              f"Arrival-Date: {email.utils.formatdate(arrival)}", ""]
    for recipient, code, diagnostic in failures:
        # Every report from here is final: the queue has stopped trying.
        status += [f"Final-Recipient: rfc822; {_clean(recipient)}", "Action: failed",
                   f"Status: {code}", f"Diagnostic-Code: smtp; {_clean(diagnostic)[:900]}", ""]
    headers = [f"From: Mail Delivery System <{from_address}>", f"To: <{_clean(to_address)}>",
               "Subject: Undelivered Mail Returned to Sender",
               f"Date: {email.utils.formatdate(now)}",
               f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>",
               "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
               f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
               ""]
    parts = ["\r\n".join(headers),
             f"--{boundary}", "Content-Type: text/plain; charset=us-ascii", "",
             "\r\n".join(human), "",
             f"--{boundary}", "Content-Type: message/delivery-status", "",
             "\r\n".join(status),
             f"--{boundary}", "Content-Type: text/rfc822-headers", ""]
    tail = f"\r\n--{boundary}--\r\n"
    return ("\r\n".join(parts) + "\r\n").encode("ascii", "replace") + \
        original_headers(original) + tail.encode("ascii")


def _clean(text: str) -> str:
    """One line of printable ASCII: nothing from a remote reply can add headers."""
    return "".join(c if " " <= c <= "~" else " " for c in " ".join(str(text).split()))


def status_of(code: int | None, text: str) -> str:
    """The enhanced status code in a reply, or one made from its basic code."""
    words = text.split()
    if words and words[0].count(".") == 2 and words[0][0] in "245":
        return words[0]
    if code and code >= 500:
        return "5.0.0"
    return "4.0.0"
