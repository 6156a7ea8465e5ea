"""``netmaster export`` / ``netmaster import``: the whole state as one JSON document, and back."""
