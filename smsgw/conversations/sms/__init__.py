"""The SMS channel: a forgiving one-line keyword parser and the router that acts on it."""
