"""Abuse reports (RFC 5965 ARF): reports out to peers, feedback-loop complaints in, traced to the customer.

model (data) - parse (tolerant reader) - build (writer, RFC 6590 redaction) - match (complaint ->
customer) - ingest (files, SMTP/LMTP) - store (SQLite) - outgoing/send (reports out) - ports (the
Protocols other parts implement, and adapters) - wiring - cli. See docs/arf.md.
"""
