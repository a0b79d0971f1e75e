"""The demo workspace: deterministic, realistic data built through the real services
(`build`), and a short tour of what optout decides and why (`tour`)."""
