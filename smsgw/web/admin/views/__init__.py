"""The admin's pages, one module per area; importing this registers them on the blueprint.

What may change, and how, is decided in services (``services.*``, ``messaging.outbox``):
a view validates the form, calls the service, records the audit entry and answers. Views
still build their own read-only list queries (filters, order, paging for one table on one
page): moving each into a service would add a function per screen without a rule in it.
Where a query carries a rule shared with another caller (what counts as a live session, a
message's delivery reports, which SMS match the monitor's filters) it lives in a service.
"""
from smsgw.web.admin.views import (  # noqa: F401
    account,
    analytics,
    bulletins,
    catalog,
    dashboard,
    messages,
    orders,
    people,
    prices,
    session,
    simulator,
    storage,
    trade,
    users,
)
