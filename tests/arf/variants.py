"""Yahoo-, AOL- and Hotmail-style report variants written for relayguard (not real reports): shapes the
real loops use, and the edge cases a tolerant parser must survive."""

from __future__ import annotations

import base64

ORIGINAL = (
    b"Received: from pc7 (dyn-198-51-100-7.isp.example [198.51.100.7])\n"
    b"\tby smtp1.isp.example (Postfix) with ESMTPA id 4Xy7Zk1Qm2\n"
    b"\tfor <victim@yahoo.example>; Mon, 5 Oct 2026 10:00:00 +0000\n"
    b'From: "Pharmacy" <sales@pills.example>\n'
    b"To: victim@yahoo.example\n"
    b"Subject: Cheap meds\n"
    b"Message-ID: <spam-1@pc7>\n"
    b"Date: Mon, 5 Oct 2026 09:59:58 +0000\n"
    b"\n"
    b"Buy now http://pills.example/buy\n"
)


def multipart(fields: bytes, original: bytes = ORIGINAL, *, feedback_headers: bytes = b"", close: bool = True) -> bytes:
    b = b"yahoo_arf_boundary_1"
    out = (
        b"From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>\n"
        b"To: fbl@isp.example\n"
        b"Subject: FW: Cheap meds\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type="feedback-report";\n'
        b'    boundary="' + b + b'"\n\n'
        b"--" + b + b"\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
        b"--" + b + b"\nContent-Type: message/feedback-report\n" + feedback_headers + b"\n" + fields + b"\n"
        b"--" + b + b"\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n" + original
    )
    return out + (b"--" + b + b"--\n" if close else b"")


YAHOO_FIELDS = (
    b"Feedback-Type: abuse\n"
    b"User-Agent: Yahoo!-Mail-Feedback/2.0\n"
    b"Version: 0.1\n"
    b"Original-Mail-From: <sales@pills.example>\n"
    b"Original-Rcpt-To: victim@yahoo.example\n"
    b"Received-Date: Mon, 05 Oct 2026 10:00:02 +0000\n"
    b"Reported-Domain: pills.example\n"
    b"Authentication-Results: mta1.yahoo.example  from=pills.example;\n"
    b"    domainkeys=neutral (no sig);  from=pills.example; dkim=none\n"
    b"Source-IP: 192.0.2.25\n"
)

AOL_FIELDS = (
    b"Feedback-Type: abuse\n"
    b"User-Agent: AOL SComp\n"
    b"Version: 0.1\n"
    b"Received-Date: Mon,  5 Oct 2026 06:00:02 -0400 (EDT)\n"
    b"Source-IP: 192.0.2.25\n"
    b"Reported-Domain: smtp1.isp.example\n"
    b"Redacted-Address: redacted\n"
    b"Redacted-Address: redacted@\n"
)


def yahoo() -> bytes:
    return multipart(YAHOO_FIELDS)


def aol() -> bytes:
    return multipart(AOL_FIELDS, ORIGINAL.replace(b"victim@yahoo.example", b"redacted"))


def hotmail() -> bytes:
    """JMRP: multipart/mixed, the message alone, the complaining recipient in X-HmXmrOriginalRecipient."""
    b = b"B2E4395D-HOTMAIL"
    return (
        b"From: staff@hotmail.example\nTo: jmrp@isp.example\n"
        b"Subject: complaint about message from 192.0.2.25\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="' + b + b'"\n\n'
        b"--" + b + b"\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
        b"X-HmXmrOriginalRecipient: victim@hotmail.example\n"
        b"Received: from smtp1.isp.example ([192.0.2.25]) by mx.hotmail.example with Microsoft SMTPSVC;\n"
        b"\t Mon, 5 Oct 2026 03:00:01 -0700\n" + ORIGINAL + b"--" + b + b"--\n"
    )


def base64_feedback() -> bytes:
    enc = base64.encodebytes(YAHOO_FIELDS)
    return multipart(enc, feedback_headers=b"Content-Transfer-Encoding: base64\n")


def forwarded(report: bytes) -> bytes:
    """A report forwarded as an attachment by a person (how some small loops arrive)."""
    b = b"fwd-1"
    return (
        b"From: postmaster@small.example\nTo: abuse@isp.example\nSubject: Fwd: spam from you\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="' + b + b'"\n\n'
        b"--" + b + b"\nContent-Type: text/plain\n\nSee attached.\n"
        b"--" + b + b"\nContent-Type: message/rfc822\n\n" + report + b"--" + b + b"--\n"
    )
