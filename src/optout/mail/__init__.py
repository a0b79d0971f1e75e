"""An email before it is sent, with no database and no network: its templates and the
links in them (`templates`, `links`), the signed unsubscribe tokens and feedback ids
(`tokens`, `feedback_ids`), the message written out (`compose`) and signed (`dkim`),
where an enrollment goes next (`plan`), the hours a sequence sends in (`windows`), and a
sending transport's URL read and checked (`transport_urls`).
The use-cases and the send worker both build on it."""
