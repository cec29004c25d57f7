"""The demo app: one task of every kind, a page to run them and a smoke check."""
