"""USSD screens, one module per menu; importing this package registers them all."""

from smsgw.conversations.ussd.screens import alerts, common, leader, orders, prices, sales  # noqa: F401
