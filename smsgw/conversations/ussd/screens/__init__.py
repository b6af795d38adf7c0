"""USSD screens, one module per menu; importing this package registers them all."""
from smsgw.conversations.ussd.screens import common, prices  # noqa: F401
