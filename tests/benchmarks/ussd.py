"""Benchmark 1: USSD sessions under load against a bare constant screen in the same server."""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from tests.benchmarks import loadgen
from tests.benchmarks.common import Scale, gunicorn, log, ratio, server_errors
from tests.benchmarks.seed import World, phone

# (kind, weight): the menu paths farmers take most, each a whole session.
MIX = (("price", 35), ("price_subscribe", 15), ("standards", 10), ("sale", 20), ("order", 20))
SERVICE_CODE = "*384*1#"


def _inputs(kind: str, rng: random.Random) -> list[str]:
    """The inputs a farmer types, one per hop after the first."""
    if kind == "price":
        return ["1", str(rng.randint(1, 4)), str(rng.randint(1, 2))]
    if kind == "price_subscribe":
        return ["1", str(rng.randint(1, 4)), "1", "1"]
    if kind == "standards":
        return ["2", "1", "1"]
    if kind == "sale":
        # Maize, 90 kg bags, 10 bags at 4,300 KSh (a usual price), sold at the market, confirm.
        return ["4", "1", "1", "10", "4300", "2", "1"]
    if kind == "order":
        # The group's open order, commit 5 bags, confirm.
        return ["3", "1", "1", "5", "1"]
    raise ValueError(kind)


class Sessions:
    """Endless scripted sessions, each with a new session id and a farmer not used before."""

    def __init__(self, world: World, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.counter = itertools.count()
        everyone = list(range(world.contacts))
        self.rng.shuffle(everyone)
        members = set(world.group_members)
        # Group members play the order sessions only; each pool is used up before any
        # farmer plays a second session.
        self.anyone = itertools.cycle([i for i in everyone if phone(i) not in members])
        self.kenyans = itertools.cycle([i for i in everyone if i % 2 == 0 and phone(i) not in members])
        shuffled = list(world.group_members)
        self.rng.shuffle(shuffled)
        self.members = itertools.cycle(shuffled)
        self.kinds = [kind for kind, _ in MIX]
        self.weights = [weight for _, weight in MIX]

    def mean_hops(self) -> float:
        """Average hops per session of the mix."""
        total = sum(self.weights)
        return sum(w * (len(_inputs(k, random.Random(0))) + 1) for k, w in MIX) / total

    def __iter__(self) -> Iterator[loadgen.Session]:
        return self

    def __next__(self) -> loadgen.Session:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "order":
            number = next(self.members)
        elif kind == "sale":
            number = phone(next(self.kenyans))
        else:
            number = phone(next(self.anyone))
        inputs = _inputs(kind, self.rng)
        session_id = f"ATUid_bench_{next(self.counter)}_{self.rng.getrandbits(32):08x}"
        last = "CON" if kind == "price" else "END"
        hops = []
        for n in range(len(inputs) + 1):
            fields = {"sessionId": session_id, "phoneNumber": number, "serviceCode": SERVICE_CODE,
                      "networkCode": "63902", "text": "*".join(inputs[:n])}
            hops.append(loadgen.Hop(fields, last if n == len(inputs) else "CON"))
        return loadgen.Session(kind, hops)


def run(url: str, world: World, scale: Scale) -> dict:
    """Bare limit, USSD at saturation, USSD at half of saturation; ratios of the two."""
    sessions = Sessions(world)
    seconds, clients = scale.ussd_seconds, scale.ussd_clients
    cap = int(2_000 * seconds)  # bounded request count, whatever the speed
    with gunicorn(url) as server:
        host, port = server.host, server.port
        log("ussd: warm-up")
        loadgen.saturate(host, port, "/bench/bare", sessions, clients, 2, cap, check=False)
        loadgen.saturate(host, port, "/at/ussd", sessions, clients, 3, cap)
        log(f"ussd: bare endpoint, {clients} clients, {seconds:.0f} s")
        bare = loadgen.saturate(host, port, "/bench/bare", sessions, clients, seconds, cap, check=False)
        log(f"ussd: bare {bare['hops_per_s']} hops/s; USSD sessions, {clients} clients, {seconds:.0f} s")
        full = loadgen.saturate(host, port, "/at/ussd", sessions, clients, seconds, cap)
        half_rate = full["hops_per_s"] / 2
        log(f"ussd: {full['hops_per_s']} hops/s saturated; paced at {half_rate:.1f} hops/s")
        half = loadgen.paced(host, port, "/at/ussd", sessions, half_rate, sessions.mean_hops(), seconds)
        logged = server_errors(server)
    return {
        "clients": clients,
        "mean_hops_per_session": round(sessions.mean_hops(), 2),
        "bare": bare,
        "saturation": full,
        "half_load": half,
        "ratio_to_bare": ratio(full["hops_per_s"], bare["hops_per_s"]),
        "p99_ms_at_half_load": half["latency_ms"]["p99"],
        "errors": full["errors"] + half["errors"],
        "server_log_errors": logged,
        "targets": {
            "ratio_to_bare_at_least_0.5": (ratio(full["hops_per_s"], bare["hops_per_s"]) or 0) >= 0.5,
            "p99_at_half_load_under_100_ms": (half["latency_ms"]["p99"] or 1e9) < 100,
            "zero_errors": full["errors"] + half["errors"] == 0,
        },
    }
