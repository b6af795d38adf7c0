"""The USSD channel: menus as a stack of screens over AT's ``text`` path."""
