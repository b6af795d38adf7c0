"""The ``smsgw`` command line: set up, seed, run, simulate, and operate.

``core`` holds the top-level group and what every command shares; each other module is one
family of commands and depends on ``core`` only. This list is the one place where the
commands join the group (click lists them alphabetically in ``--help``).
"""
from __future__ import annotations

from smsgw.cli import buyers, contacts, doctor, jobs, outbox, prices, report, rollouts, sales, service, simulate, users
from smsgw.cli.core import main

for command in (
    service.init,
    service.seed,
    service.serve,
    service.scheduler,
    service.demo,
    simulate.simulate,
    outbox.outbox,
    jobs.bulletins,
    jobs.orders_sweep,
    prices.import_prices,
    sales.import_sales,
    prices.prices,
    report.report,
    doctor.doctor,
    users.users,
    contacts.contacts,
    buyers.buyers,
    rollouts.rollout,
):
    main.add_command(command)
del command

__all__ = ["main"]
