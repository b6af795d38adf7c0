"""The admin's pages, one module per area; importing this registers them on the blueprint."""
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
    users,
)
