"""Who must never be emailed again, and why: opting out, bounces and complaints with
their ledger (`optouts`), the unsubscribe link (`unsubscribes`), the opt-outs the CRM
must learn (`writebacks`), the inbound messages a person decides on (`review_queue`),
and the evidence behind a person's history (`signals`)."""
