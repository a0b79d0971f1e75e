"""The web app: the public unsubscribe page now; the JSON API and the UI join it here."""
