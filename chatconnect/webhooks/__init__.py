"""Webhooks: every stored event POSTed, signed, to the URLs a client registers."""
