"""Billing data: tariffs, rates, products, balances, reservations, vouchers, xDRs.

Money goes in and out as ``Decimal``. It is stored as NUMERIC on PostgreSQL
and as decimal TEXT on SQLite, so arithmetic on it never happens in SQL
(SQLite would do it in floating point): every balance change reads the row
under its lock, computes in Python and writes the exact result back.

Funds are spent in two steps. :meth:`BillingStore.add_reservation` locks the
customer and account rows, shows the caller a :class:`FundsSnapshot` (balances,
limits and what calls in progress already hold) and records what the
caller's decision reserves; concurrent authorizations on one balance queue on
those locks, so each sees the others' reservations and together they never
exceed the funds. :meth:`BillingStore.settle_reservation` then removes the
reservation, changes the balances and writes the xDR in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any, Callable, Sequence

from .accounts import AlreadyExists, NotFound
from .engines import IntegrityError, StoreError

__all__ = [
    "AccessEntry", "AccountBilling", "BillingStore", "CustomerBilling", "FundsSnapshot",
    "ProductRecord", "RateRecord", "ReservationRecord", "TariffRecord", "VoucherRecord",
    "VoucherUnavailable", "XdrRecord",
]

BILLING_MODELS = ("credit", "debit")


class VoucherUnavailable(StoreError):
    """The voucher exists but was used already or has expired."""

    def __init__(self, number: str, reason: str):
        self.number = number
        self.reason = reason
        super().__init__(f"voucher {number} {reason}")


def money(value) -> Decimal | None:
    """A stored amount as Decimal (PostgreSQL gives Decimal, SQLite gives text)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    # Both engines take decimal text: SQLite keeps it as is, PostgreSQL
    # casts the literal into NUMERIC exactly.
    return None if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class TariffRecord:
    id: int
    name: str
    description: str
    created: int


#: Rate columns, in table order after tariff_id.
_RATE_COLUMNS = ("prefix", "price_per_minute", "next_price_per_minute", "first_interval",
                 "next_interval", "connection_fee", "free_seconds", "grace_period", "forbidden")


@dataclasses.dataclass(frozen=True)
class RateRecord:
    """A stored rate; the same fields as :class:`portaum_tx.billing.rating.Rate`."""

    prefix: str
    price_per_minute: Decimal
    next_price_per_minute: Decimal | None = None
    first_interval: int = 60
    next_interval: int = 60
    connection_fee: Decimal = Decimal(0)
    free_seconds: int = 0
    grace_period: int = 0
    forbidden: bool = False

    @classmethod
    def from_row(cls, row) -> "RateRecord":
        values = dict(zip(_RATE_COLUMNS, row))
        for name in ("price_per_minute", "next_price_per_minute", "connection_fee"):
            values[name] = money(values[name])
        values["forbidden"] = bool(values["forbidden"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ProductRecord:
    id: int
    name: str
    breakage: Decimal
    created: int


@dataclasses.dataclass(frozen=True)
class AccessEntry:
    """One line of a product's accessibility list."""

    product: str
    access_code: str
    tariff: str


@dataclasses.dataclass(frozen=True)
class CustomerBilling:
    id: int
    name: str
    balance: Decimal
    credit_limit: Decimal | None


_ACCOUNT_BILLING = (
    "SELECT a.id, a.customer_id, c.name, a.billing_model, a.balance, a.credit_limit, "
    "a.product_id, p.name, a.service_password_hash, a.calls_via_ivr, a.blocked, "
    "a.associated_number, a.pin_hash, a.language FROM accounts a JOIN customers c ON c.id = a.customer_id "
    "LEFT JOIN products p ON p.id = a.product_id")


@dataclasses.dataclass(frozen=True)
class AccountBilling:
    """An account as billing sees it."""

    account_id: str
    customer_id: int
    customer: str
    billing_model: str
    balance: Decimal
    credit_limit: Decimal | None
    product_id: int | None
    product: str | None
    service_password_hash: str | None
    calls_via_ivr: str | None
    blocked: bool
    associated_number: str | None
    pin_hash: str | None
    language: str

    @classmethod
    def from_row(cls, row) -> "AccountBilling":
        (account_id, customer_id, customer, model, balance, limit, product_id, product,
         password, ivr, blocked, associated, pin, language) = row
        return cls(account_id, customer_id, customer, model, money(balance), money(limit),
                   product_id, product, password, ivr, bool(blocked), associated, pin, language)


@dataclasses.dataclass(frozen=True)
class FundsSnapshot:
    """Balances and limits, read under lock, with what live reservations hold."""

    account: AccountBilling
    customer: CustomerBilling
    account_reserved: Decimal
    customer_reserved: Decimal


@dataclasses.dataclass(frozen=True)
class ReservationRecord:
    id: int
    account_id: str
    customer_id: int
    amount: Decimal
    on_customer: bool
    max_seconds: int
    destination: str
    tariff: str
    rate: dict
    created: int
    expires: int


_RESERVATION_COLUMNS = ("id, account_id, customer_id, amount, on_customer, max_seconds, "
                        "destination, tariff, rate, created, expires")


def _reservation(row) -> ReservationRecord:
    return ReservationRecord(row[0], row[1], row[2], money(row[3]), bool(row[4]), row[5], row[6],
                             row[7], json.loads(row[8]), row[9], row[10])


@dataclasses.dataclass(frozen=True)
class VoucherRecord:
    number: str
    amount: Decimal
    expires: int | None
    used_by: str | None
    used_at: int | None
    created: int


_VOUCHER_COLUMNS = "number, amount, expires, used_by, used_at, created"


def _voucher(row) -> VoucherRecord:
    return VoucherRecord(row[0], money(row[1]), row[2], row[3], row[4], row[5])


_XDR_FIELDS = ("id", "account_id", "customer_id", "service", "cli", "cld", "access_number", "leg",
               "start_time", "duration", "charged_seconds", "charge", "balance_after", "tariff",
               "rate_prefix", "description", "created")


@dataclasses.dataclass(frozen=True)
class XdrRecord:
    """One call leg or payment. ``charge`` is what the account paid
    (negative for money put in); ``balance_after`` is the account's balance
    once it was applied."""

    id: int
    account_id: str
    customer_id: int
    service: str
    cli: str
    cld: str
    access_number: str
    leg: str
    start_time: int
    duration: int
    charged_seconds: int
    charge: Decimal
    balance_after: Decimal
    tariff: str
    rate_prefix: str
    description: str
    created: int

    @classmethod
    def from_row(cls, row) -> "XdrRecord":
        values = dict(zip(_XDR_FIELDS, row))
        values["charge"] = money(values["charge"])
        values["balance_after"] = money(values["balance_after"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_XDR_SELECT = f"SELECT {', '.join(_XDR_FIELDS)} FROM xdrs"
_XDR_INSERT_FIELDS = _XDR_FIELDS[1:]


class BillingStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.seconds())

    # --- tariffs and rates ---------------------------------------------------

    async def add_tariff(self, name: str, description: str = "") -> TariffRecord:
        now = self._now()

        async def add(txn):
            try:
                rows = await txn.execute(
                    "INSERT INTO tariffs (name, description, created) VALUES (?, ?, ?) "
                    "RETURNING id", (name, description, now))
            except IntegrityError:
                raise AlreadyExists(f"tariff {name!r} already exists") from None
            return TariffRecord(rows[0][0], name, description, now)
        return await self._db.run_interaction("add_tariff", add)

    async def get_tariff(self, name: str) -> TariffRecord:
        rows = await self._db.execute(
            "get_tariff", "SELECT id, name, description, created FROM tariffs WHERE name = ?",
            (name,))
        if not rows:
            raise NotFound(f"no tariff named {name!r}")
        return TariffRecord(*rows[0])

    async def get_tariffs(self) -> list[TariffRecord]:
        rows = await self._db.execute(
            "get_tariffs", "SELECT id, name, description, created FROM tariffs ORDER BY name")
        return [TariffRecord(*row) for row in rows]

    async def delete_tariff(self, name: str) -> None:
        async def delete(txn):
            rows = await txn.execute("SELECT id FROM tariffs WHERE name = ?", (name,))
            if not rows:
                raise NotFound(f"no tariff named {name!r}")
            used = await txn.execute(
                "SELECT p.name, pa.access_code FROM product_access pa JOIN products p "
                "ON p.id = pa.product_id WHERE pa.tariff_id = ? ORDER BY p.name", (rows[0][0],))
            if used:
                where = ", ".join(f"{p}" + (f" (access code {c})" if c else "") for p, c in used)
                raise StoreError(f"tariff {name!r} is used by product {where}; "
                                 "change those products first")
            await txn.execute("DELETE FROM rates WHERE tariff_id = ?", (rows[0][0],))
            await txn.execute("DELETE FROM tariffs WHERE id = ?", (rows[0][0],))
        await self._db.run_interaction("delete_tariff", delete)

    async def store_rate(self, tariff: str, rate: RateRecord) -> RateRecord:
        """Add the rate for ``rate.prefix``, or replace the one there."""
        values = [
            rate.prefix, _text(rate.price_per_minute), _text(rate.next_price_per_minute),
            rate.first_interval, rate.next_interval, _text(rate.connection_fee),
            rate.free_seconds, rate.grace_period, int(rate.forbidden)]
        columns = ", ".join(_RATE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _RATE_COLUMNS[1:])

        async def store(txn):
            found = await txn.execute("SELECT id FROM tariffs WHERE name = ?", (tariff,))
            if not found:
                raise NotFound(f"no tariff named {tariff!r}")
            rows = await txn.execute(
                f"INSERT INTO rates (tariff_id, {columns}) VALUES (?, {', '.join('?' * len(values))}) "
                f"ON CONFLICT (tariff_id, prefix) DO UPDATE SET {updates} RETURNING {columns}",
                [found[0][0]] + values)
            return RateRecord.from_row(rows[0])
        return await self._db.run_interaction("store_rate", store)

    async def get_rates(self, tariff: str) -> list[RateRecord]:
        rows = await self._db.execute(
            "get_rates", f"SELECT {', '.join('r.' + c for c in _RATE_COLUMNS)} FROM rates r "
            "JOIN tariffs t ON t.id = r.tariff_id WHERE t.name = ? ORDER BY r.prefix", (tariff,))
        if not rows:
            await self.get_tariff(tariff)
        return [RateRecord.from_row(row) for row in rows]

    async def get_rate_for(self, tariff: str, number: str) -> RateRecord | None:
        """The rate with the longest prefix of ``number`` in ``tariff``, forbidden or not."""
        prefixes = [number[:length] for length in range(len(number), 0, -1)]
        if not prefixes:
            return None
        rows = await self._db.execute(
            "get_rate_for",
            f"SELECT {', '.join('r.' + c for c in _RATE_COLUMNS)} FROM rates r "
            "JOIN tariffs t ON t.id = r.tariff_id WHERE t.name = ? "
            f"AND r.prefix IN ({', '.join('?' for _ in prefixes)}) "
            "ORDER BY LENGTH(r.prefix) DESC LIMIT 1", [tariff] + prefixes)
        return RateRecord.from_row(rows[0]) if rows else None

    async def delete_rate(self, tariff: str, prefix: str) -> None:
        async def delete(txn):
            found = await txn.execute("SELECT id FROM tariffs WHERE name = ?", (tariff,))
            if not found:
                raise NotFound(f"no tariff named {tariff!r}")
            if not await txn.execute(
                    "DELETE FROM rates WHERE tariff_id = ? AND prefix = ? RETURNING prefix",
                    (found[0][0], prefix)):
                raise NotFound(f"tariff {tariff!r} has no rate for prefix {prefix!r}")
        await self._db.run_interaction("delete_rate", delete)

    # --- products and their accessibility lists ------------------------------

    async def add_product(self, name: str, tariff: str, breakage: Decimal = Decimal(0)) -> ProductRecord:
        """A product whose default tariff (access code '') is ``tariff``."""
        now = self._now()

        async def add(txn):
            found = await txn.execute("SELECT id FROM tariffs WHERE name = ?", (tariff,))
            if not found:
                raise NotFound(f"no tariff named {tariff!r}")
            try:
                rows = await txn.execute(
                    "INSERT INTO products (name, breakage, created) VALUES (?, ?, ?) RETURNING id",
                    (name, _text(breakage), now))
            except IntegrityError:
                raise AlreadyExists(f"product {name!r} already exists") from None
            await txn.execute(
                "INSERT INTO product_access (product_id, access_code, tariff_id) VALUES (?, '', ?)",
                (rows[0][0], found[0][0]))
            return ProductRecord(rows[0][0], name, breakage, now)
        return await self._db.run_interaction("add_product", add)

    async def get_product(self, name: str) -> ProductRecord:
        rows = await self._db.execute(
            "get_product", "SELECT id, name, breakage, created FROM products WHERE name = ?",
            (name,))
        if not rows:
            raise NotFound(f"no product named {name!r}")
        return ProductRecord(rows[0][0], rows[0][1], money(rows[0][2]), rows[0][3])

    async def get_products(self) -> list[ProductRecord]:
        rows = await self._db.execute(
            "get_products", "SELECT id, name, breakage, created FROM products ORDER BY name")
        return [ProductRecord(r[0], r[1], money(r[2]), r[3]) for r in rows]

    async def set_product_breakage(self, name: str, breakage: Decimal) -> ProductRecord:
        rows = await self._db.execute(
            "set_product_breakage", "UPDATE products SET breakage = ? WHERE name = ? "
            "RETURNING id, name, breakage, created", (_text(breakage), name))
        if not rows:
            raise NotFound(f"no product named {name!r}")
        return ProductRecord(rows[0][0], rows[0][1], money(rows[0][2]), rows[0][3])

    async def delete_product(self, name: str) -> None:
        async def delete(txn):
            rows = await txn.execute("SELECT id FROM products WHERE name = ?", (name,))
            if not rows:
                raise NotFound(f"no product named {name!r}")
            used = await txn.execute(
                "SELECT id FROM accounts WHERE product_id = ? ORDER BY id", (rows[0][0],))
            if used:
                raise StoreError(f"product {name!r} is used by {len(used)} account(s) "
                                 f"({', '.join(r[0] for r in used[:5])}); change them first")
            await txn.execute("DELETE FROM product_access WHERE product_id = ?", (rows[0][0],))
            await txn.execute("DELETE FROM products WHERE id = ?", (rows[0][0],))
        await self._db.run_interaction("delete_product", delete)

    async def store_access_entry(self, product: str, access_code: str, tariff: str) -> AccessEntry:
        """Point ``access_code`` of ``product`` at ``tariff`` ('' is the default tariff)."""
        async def store(txn):
            found = await txn.execute("SELECT id FROM products WHERE name = ?", (product,))
            if not found:
                raise NotFound(f"no product named {product!r}")
            target = await txn.execute("SELECT id FROM tariffs WHERE name = ?", (tariff,))
            if not target:
                raise NotFound(f"no tariff named {tariff!r}")
            await txn.execute(
                "INSERT INTO product_access (product_id, access_code, tariff_id) VALUES (?, ?, ?) "
                "ON CONFLICT (product_id, access_code) DO UPDATE SET tariff_id = excluded.tariff_id",
                (found[0][0], access_code, target[0][0]))
            return AccessEntry(product, access_code, tariff)
        return await self._db.run_interaction("store_access_entry", store)

    async def get_access_entries(self, product: str) -> list[AccessEntry]:
        rows = await self._db.execute(
            "get_access_entries",
            "SELECT pa.access_code, t.name FROM product_access pa JOIN products p "
            "ON p.id = pa.product_id JOIN tariffs t ON t.id = pa.tariff_id WHERE p.name = ? "
            "ORDER BY pa.access_code", (product,))
        if not rows:
            await self.get_product(product)
        return [AccessEntry(product, code, tariff) for code, tariff in rows]

    async def get_tariff_for_access(self, product_id: int, access_codes: Sequence[str]) -> str | None:
        """The tariff of the first of ``access_codes`` the product lists, or None."""
        codes = list(dict.fromkeys(access_codes))
        if not codes:
            return None
        rows = await self._db.execute(
            "get_tariff_for_access",
            "SELECT pa.access_code, t.name FROM product_access pa JOIN tariffs t "
            f"ON t.id = pa.tariff_id WHERE pa.product_id = ? AND pa.access_code IN "
            f"({', '.join('?' for _ in codes)})", [product_id] + codes)
        by_code = dict(rows)
        for code in codes:
            if code in by_code:
                return by_code[code]
        return None

    async def delete_access_entry(self, product: str, access_code: str) -> None:
        if access_code == "":
            raise StoreError(f"the default tariff of product {product!r} cannot be removed; "
                             "point it at another tariff instead")
        async def delete(txn):
            found = await txn.execute("SELECT id FROM products WHERE name = ?", (product,))
            if not found:
                raise NotFound(f"no product named {product!r}")
            if not await txn.execute(
                    "DELETE FROM product_access WHERE product_id = ? AND access_code = ? "
                    "RETURNING access_code", (found[0][0], access_code)):
                raise NotFound(f"product {product!r} has no access code {access_code!r}")
        await self._db.run_interaction("delete_access_entry", delete)

    # --- customers and accounts ----------------------------------------------

    async def get_customer_billing(self, name: str | None = None, *,
                                   customer_id: int | None = None) -> CustomerBilling:
        if customer_id is not None:
            rows = await self._db.execute(
                "get_customer_billing",
                "SELECT id, name, balance, credit_limit FROM customers WHERE id = ?", (customer_id,))
            what = f"with id {customer_id}"
        else:
            rows = await self._db.execute(
                "get_customer_billing",
                "SELECT id, name, balance, credit_limit FROM customers WHERE name = ?", (name,))
            what = f"named {name!r}"
        if not rows:
            raise NotFound(f"no customer {what}")
        return _customer(rows[0])

    async def set_customer_credit_limit(self, name: str, credit_limit: Decimal | None) -> CustomerBilling:
        rows = await self._db.execute(
            "set_customer_credit_limit", "UPDATE customers SET credit_limit = ? WHERE name = ? "
            "RETURNING id, name, balance, credit_limit", (_text(credit_limit), name))
        if not rows:
            raise NotFound(f"no customer named {name!r}")
        return _customer(rows[0])

    async def get_account_billing(self, account_id: str) -> AccountBilling:
        rows = await self._db.execute("get_account_billing", _ACCOUNT_BILLING + " WHERE a.id = ?",
                                      (account_id,))
        if not rows:
            raise NotFound(f"no account {account_id}")
        return AccountBilling.from_row(rows[0])

    async def get_account_billing_by_alias(self, login: str) -> AccountBilling:
        """The account with this ID, or that this alias belongs to."""
        rows = await self._db.execute(
            "get_account_billing_by_alias",
            _ACCOUNT_BILLING + " WHERE a.id = ? UNION ALL " + _ACCOUNT_BILLING +
            " JOIN aliases al ON al.account_id = a.id WHERE al.alias = ?", (login, login))
        if not rows:
            raise NotFound(f"no account or alias {login}")
        return AccountBilling.from_row(rows[0])

    async def get_accounts_billing(self, customer_id: int | None = None) -> list[AccountBilling]:
        if customer_id is None:
            rows = await self._db.execute("get_accounts_billing", _ACCOUNT_BILLING + " ORDER BY a.id")
        else:
            rows = await self._db.execute(
                "get_accounts_billing", _ACCOUNT_BILLING + " WHERE a.customer_id = ? ORDER BY a.id",
                (customer_id,))
        return [AccountBilling.from_row(row) for row in rows]

    async def set_account_billing(self, account_id: str, **fields: Any) -> AccountBilling:
        """Change billing settings: ``billing_model``, ``credit_limit``, ``product``
        (a name, or None), ``service_password_hash``, ``calls_via_ivr``, ``blocked``."""
        allowed = {"billing_model", "credit_limit", "product", "service_password_hash",
                   "calls_via_ivr", "blocked"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown account billing fields: {sorted(unknown)}")
        if "billing_model" in fields and fields["billing_model"] not in BILLING_MODELS:
            raise ValueError(f"billing model must be credit or debit, not {fields['billing_model']!r}")

        async def update(txn):
            values = dict(fields)
            if "product" in values:
                product = values.pop("product")
                if product is None:
                    values["product_id"] = None
                else:
                    found = await txn.execute("SELECT id FROM products WHERE name = ?", (product,))
                    if not found:
                        raise NotFound(f"no product named {product!r}")
                    values["product_id"] = found[0][0]
            if "credit_limit" in values:
                values["credit_limit"] = _text(values["credit_limit"])
            if "blocked" in values:
                values["blocked"] = int(bool(values["blocked"]))
            if values:
                if "billing_model" in values:
                    current = await txn.execute(
                        "SELECT billing_model FROM accounts WHERE id = ?", (account_id,))
                    if current and current[0][0] != values["billing_model"] and \
                            await _live_reservations(txn, account_id, self._now()):
                        raise StoreError(f"account {account_id} has calls in progress; change "
                                         "its billing model when they have ended")
                assignments = ", ".join(f"{name} = ?" for name in values)
                await txn.execute(f"UPDATE accounts SET {assignments} WHERE id = ?",
                                  list(values.values()) + [account_id])
            rows = await txn.execute(_ACCOUNT_BILLING + " WHERE a.id = ?", (account_id,))
            if not rows:
                raise NotFound(f"no account {account_id}")
            return AccountBilling.from_row(rows[0])
        return await self._db.run_interaction("set_account_billing", update)

    # --- funds: reservations, charges, payments ------------------------------

    async def _lock(self, txn, account_id: str) -> tuple[AccountBilling, CustomerBilling]:
        """Lock the customer row, then the account row (always in this order)."""
        owner = await txn.execute("SELECT customer_id FROM accounts WHERE id = ?", (account_id,))
        if not owner:
            raise NotFound(f"no account {account_id}")
        customer = await txn.execute(
            "SELECT id, name, balance, credit_limit FROM customers WHERE id = ?" + self._db.for_update,
            (owner[0][0],))
        await txn.execute("SELECT id FROM accounts WHERE id = ?" + self._db.for_update, (account_id,))
        account = await txn.execute(_ACCOUNT_BILLING + " WHERE a.id = ?", (account_id,))
        return AccountBilling.from_row(account[0]), _customer(customer[0])

    async def get_funds(self, account_id: str) -> FundsSnapshot:
        """Balances, limits and live reservations as they are now. Nothing is
        locked: this is for showing and announcing, never for deciding."""
        now = self._now()

        async def read(txn):
            rows = await txn.execute(_ACCOUNT_BILLING + " WHERE a.id = ?", (account_id,))
            if not rows:
                raise NotFound(f"no account {account_id}")
            account = AccountBilling.from_row(rows[0])
            customer = await txn.execute(
                "SELECT id, name, balance, credit_limit FROM customers WHERE id = ?",
                (account.customer_id,))
            return await _snapshot(txn, account, _customer(customer[0]), now)
        return await self._db.run_interaction("get_funds", read)

    async def add_reservation(self, account_id: str,
                              decide: Callable[[FundsSnapshot], "ReservationPlan"]) -> ReservationRecord:
        """Reserve funds for a call.

        ``decide`` sees the funds under lock and returns a :class:`ReservationPlan`
        (or raises, which rolls everything back). Expired reservations of the
        account are dropped first."""
        now = self._now()

        async def reserve(txn):
            account, customer = await self._lock(txn, account_id)
            await txn.execute("DELETE FROM reservations WHERE customer_id = ? AND expires <= ?",
                              (customer.id, now))
            plan = decide(await _snapshot(txn, account, customer, now))
            inserted = await txn.execute(
                "INSERT INTO reservations (account_id, customer_id, amount, on_customer, "
                "max_seconds, destination, tariff, rate, created, expires) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_RESERVATION_COLUMNS}",
                (account_id, customer.id, _text(plan.amount), int(plan.on_customer),
                 plan.max_seconds, plan.destination, plan.tariff,
                 json.dumps(plan.rate, sort_keys=True, default=str), now, now + plan.lifetime))
            return _reservation(inserted[0])
        return await self._db.run_interaction("add_reservation", reserve)

    async def get_reservation(self, reservation_id: int) -> ReservationRecord:
        rows = await self._db.execute(
            "get_reservation", f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE id = ?",
            (reservation_id,))
        if not rows:
            raise NotFound(f"no reservation {reservation_id} (settled, released or expired)")
        return _reservation(rows[0])

    async def get_reservations(self, account_id: str) -> list[ReservationRecord]:
        rows = await self._db.execute(
            "get_reservations", f"SELECT {_RESERVATION_COLUMNS} FROM reservations "
            "WHERE account_id = ? AND expires > ? ORDER BY id", (account_id, self._now()))
        return [_reservation(row) for row in rows]

    async def delete_reservation(self, reservation_id: int) -> None:
        rows = await self._db.execute(
            "delete_reservation", "DELETE FROM reservations WHERE id = ? RETURNING id",
            (reservation_id,))
        if not rows:
            raise NotFound(f"no reservation {reservation_id} (settled, released or expired)")

    async def settle_reservation(self, reservation_id: int, charge: Decimal,
                                 xdr: dict[str, Any]) -> XdrRecord:
        """End a reservation: apply ``charge`` and write the xDR, in one transaction.

        ``charge`` must not exceed the reservation; ``xdr`` holds the record's
        call fields (cli, cld, access_number, leg, start_time, duration,
        charged_seconds, tariff, rate_prefix, description)."""
        async def settle(txn):
            rows = await txn.execute(
                f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE id = ?", (reservation_id,))
            if not rows:
                raise NotFound(f"no reservation {reservation_id} (settled, released or expired)")
            reservation = _reservation(rows[0])
            # max_seconds -1: an unlimited call, which reserved nothing.
            if reservation.max_seconds >= 0 and charge > reservation.amount:
                raise StoreError(f"charge {charge} exceeds reservation {reservation_id} "
                                 f"of {reservation.amount}")
            account, customer = await self._lock(txn, reservation.account_id)
            if not await txn.execute("DELETE FROM reservations WHERE id = ? RETURNING id",
                                     (reservation_id,)):
                raise NotFound(f"no reservation {reservation_id} (settled, released or expired)")
            return await self._apply(txn, account, customer, charge, "call", xdr)
        return await self._db.run_interaction("settle_reservation", settle)

    async def _apply(self, txn, account: AccountBilling, customer: CustomerBilling,
                     charge: Decimal, service: str, fields: dict[str, Any]) -> XdrRecord:
        """Take ``charge`` from an account locked by :meth:`_lock` (negative puts
        money in) and record it."""
        if account.billing_model == "debit":
            balance = account.balance - charge
        else:
            balance = account.balance + charge
            await txn.execute("UPDATE customers SET balance = ? WHERE id = ?",
                              (_text(customer.balance + charge), customer.id))
        await txn.execute("UPDATE accounts SET balance = ? WHERE id = ?",
                          (_text(balance), account.account_id))
        values = {"cli": "", "cld": "", "access_number": "", "leg": "", "start_time": self._now(),
                  "duration": 0, "charged_seconds": 0, "tariff": "", "rate_prefix": "",
                  "description": ""}
        unknown = set(fields) - set(values)
        if unknown:
            raise ValueError(f"unknown xDR fields: {sorted(unknown)}")
        values.update(fields)
        values.update(account_id=account.account_id, customer_id=account.customer_id,
                      service=service, charge=_text(charge), balance_after=_text(balance),
                      created=self._now())
        rows = await txn.execute(
            f"INSERT INTO xdrs ({', '.join(_XDR_INSERT_FIELDS)}) VALUES "
            f"({', '.join('?' for _ in _XDR_INSERT_FIELDS)}) RETURNING {', '.join(_XDR_FIELDS)}",
            [values[name] for name in _XDR_INSERT_FIELDS])
        return XdrRecord.from_row(rows[0])

    async def add_account_transaction(self, account_id: str, charge: Decimal, service: str,
                                      description: str = "", **fields: Any) -> XdrRecord:
        """A charge (positive) or payment (negative) outside any call, with its xDR."""
        async def apply(txn):
            account, customer = await self._lock(txn, account_id)
            return await self._apply(txn, account, customer, charge, service,
                                     dict(fields, description=description))
        return await self._db.run_interaction("add_account_transaction", apply)

    async def set_account_balance(self, account_id: str, balance: Decimal,
                                  description: str = "balance set") -> XdrRecord:
        """Set the balance; the difference is recorded as an adjustment xDR."""
        async def apply(txn):
            account, customer = await self._lock(txn, account_id)
            difference = balance - account.balance
            charge = -difference if account.billing_model == "debit" else difference
            return await self._apply(txn, account, customer, charge, "adjustment",
                                     {"description": description})
        return await self._db.run_interaction("set_account_balance", apply)

    async def add_customer_payment(self, name: str, amount: Decimal) -> CustomerBilling:
        """Money a customer paid: lowers what its credit accounts owe together."""
        async def pay(txn):
            rows = await txn.execute(
                "SELECT id, name, balance, credit_limit FROM customers WHERE name = ?"
                + self._db.for_update, (name,))
            if not rows:
                raise NotFound(f"no customer named {name!r}")
            customer = _customer(rows[0])
            updated = await txn.execute(
                "UPDATE customers SET balance = ? WHERE id = ? "
                "RETURNING id, name, balance, credit_limit",
                (_text(customer.balance - amount), customer.id))
            return _customer(updated[0])
        return await self._db.run_interaction("add_customer_payment", pay)

    # --- vouchers ------------------------------------------------------------

    async def add_voucher(self, number: str, amount: Decimal, expires: int | None = None) -> VoucherRecord:
        now = self._now()
        try:
            rows = await self._db.execute(
                "add_voucher", f"INSERT INTO vouchers (number, amount, expires, created) "
                f"VALUES (?, ?, ?, ?) RETURNING {_VOUCHER_COLUMNS}",
                (number, _text(amount), expires, now))
        except IntegrityError:
            raise AlreadyExists(f"voucher {number} already exists") from None
        return _voucher(rows[0])

    async def get_voucher(self, number: str) -> VoucherRecord:
        rows = await self._db.execute(
            "get_voucher", f"SELECT {_VOUCHER_COLUMNS} FROM vouchers WHERE number = ?", (number,))
        if not rows:
            raise NotFound(f"no voucher {number}")
        return _voucher(rows[0])

    async def get_vouchers(self, used: bool | None = None) -> list[VoucherRecord]:
        where = "" if used is None else (" WHERE used_by IS NOT NULL" if used
                                         else " WHERE used_by IS NULL")
        rows = await self._db.execute(
            "get_vouchers", f"SELECT {_VOUCHER_COLUMNS} FROM vouchers{where} ORDER BY number")
        return [_voucher(row) for row in rows]

    async def delete_voucher(self, number: str) -> None:
        rows = await self._db.execute(
            "delete_voucher", "DELETE FROM vouchers WHERE number = ? RETURNING number", (number,))
        if not rows:
            raise NotFound(f"no voucher {number}")

    async def redeem_voucher(self, number: str, account_id: str,
                             description: str = "") -> tuple[VoucherRecord, XdrRecord]:
        """Mark the voucher used by ``account_id`` and credit its amount, atomically.

        The guarded UPDATE lets exactly one of several concurrent redemptions
        claim the voucher; the others see :class:`VoucherUnavailable`."""
        now = self._now()

        async def redeem(txn):
            account, customer = await self._lock(txn, account_id)
            rows = await txn.execute(
                "UPDATE vouchers SET used_by = ?, used_at = ? WHERE number = ? AND used_by IS NULL "
                f"AND (expires IS NULL OR expires > ?) RETURNING {_VOUCHER_COLUMNS}",
                (account_id, now, number, now))
            if not rows:
                state = await txn.execute(
                    f"SELECT {_VOUCHER_COLUMNS} FROM vouchers WHERE number = ?", (number,))
                if not state:
                    raise NotFound(f"no voucher {number}")
                voucher = _voucher(state[0])
                if voucher.used_by is not None:
                    raise VoucherUnavailable(number, "was used already")
                raise VoucherUnavailable(number, "has expired")
            voucher = _voucher(rows[0])
            xdr = await self._apply(txn, account, customer, -voucher.amount, "voucher",
                                    {"cld": number, "description": description or f"voucher {number}"})
            return voucher, xdr
        return await self._db.run_interaction("redeem_voucher", redeem)

    # --- history -------------------------------------------------------------

    async def get_xdrs(self, *, account_id: str | None = None, customer_id: int | None = None,
                       since: int | None = None, until: int | None = None,
                       service: str | None = None, limit: int | None = None) -> list[XdrRecord]:
        """xDRs of one account or one customer, oldest first, within [since, until)."""
        if (account_id is None) == (customer_id is None):
            raise ValueError("give exactly one of account_id and customer_id")
        where, args = [], []
        if account_id is not None:
            where.append("account_id = ?")
            args.append(account_id)
        else:
            where.append("customer_id = ?")
            args.append(customer_id)
        if since is not None:
            where.append("start_time >= ?")
            args.append(since)
        if until is not None:
            where.append("start_time < ?")
            args.append(until)
        if service is not None:
            where.append("service = ?")
            args.append(service)
        sql = f"{_XDR_SELECT} WHERE {' AND '.join(where)} ORDER BY start_time, id"
        if limit is not None:
            # The newest ``limit`` records, still returned oldest first.
            sql = (f"SELECT * FROM ({_XDR_SELECT} WHERE {' AND '.join(where)} "
                   "ORDER BY start_time DESC, id DESC LIMIT ?) newest ORDER BY start_time, id")
            args.append(int(limit))
        rows = await self._db.execute("get_xdrs", sql, args)
        return [XdrRecord.from_row(row) for row in rows]


@dataclasses.dataclass(frozen=True)
class ReservationPlan:
    """What :meth:`BillingStore.add_reservation`'s decision reserves."""

    amount: Decimal
    on_customer: bool
    max_seconds: int
    destination: str
    tariff: str
    rate: dict
    lifetime: int


def _customer(row) -> CustomerBilling:
    return CustomerBilling(row[0], row[1], money(row[2]), money(row[3]))


async def _snapshot(txn, account: AccountBilling, customer: CustomerBilling,
                    now: int) -> FundsSnapshot:
    rows = await txn.execute(
        "SELECT account_id, amount, on_customer FROM reservations WHERE customer_id = ? "
        "AND expires > ?", (customer.id, now))
    account_reserved = sum((money(a) for acc, a, _ in rows if acc == account.account_id),
                           Decimal(0))
    customer_reserved = sum((money(a) for _, a, on in rows if on), Decimal(0))
    return FundsSnapshot(account, customer, account_reserved, customer_reserved)


async def _live_reservations(txn, account_id: str, now: int) -> int:
    rows = await txn.execute(
        "SELECT COUNT(*) FROM reservations WHERE account_id = ? AND expires > ?", (account_id, now))
    return rows[0][0]
