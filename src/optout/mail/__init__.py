"""An email before it is sent, with no database and no network: its templates and the
links in them (`templates`, `links`), the signed unsubscribe tokens and feedback ids
(`tokens`, `feedback_ids`), the message written out (`compose`) and signed (`dkim`),
where an enrollment goes next (`plan`) and the hours a sequence sends in (`windows`).
The use-cases and the send worker both build on it."""
