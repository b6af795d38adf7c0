"""The web side: AT webhooks and the operator admin."""
