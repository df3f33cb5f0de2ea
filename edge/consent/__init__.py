"""Consent room: the encrypted SQLCipher store, retention rules and the in-memory gallery.

Import the parts you need: `edge.consent.store.ConsentStore`, `edge.consent.gallery.Gallery`,
`edge.consent.keys` (key files), `edge.consent.errors` (exceptions).
"""
