"""Turning a due email into a delivered message: templates, MIME, DKIM, transports, tokens."""
