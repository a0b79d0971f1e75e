"""Sender mailboxes (R37, R40): the addresses a workspace sends from and their limits
(`sender_mailboxes`), which mailbox a new enrollment sends from (`assignment`), a
mailbox's own IMAP login for its replies (`imap_logins`), removing a mailbox
(`removal`), what a person's mailbox means for their next email (`availability`), and the
breaker that pauses a mailbox whose sends bounce or draw complaints (`reputation`)."""
