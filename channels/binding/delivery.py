"""When binding events leave: once the transaction that made the change has committed.

An event sent from inside the transaction could announce a row that a rollback then takes back,
or reach a client that reads the row before it is visible. So each event waits for the commit
of the database connection that saved the row (``transaction.on_commit``); outside a
transaction that is at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.transaction import TransactionManagementError

from channels.channel import Group

logger = logging.getLogger("channels.binding")


def send_after_commit(group_names: Iterable[str], message: dict[str, Any],
                      using: str | None = None, alias: str | None = None) -> None:
    """Send ``message`` to each group once the current transaction on ``using`` commits.

    The message must already be encoded: it is what the row looked like at save time, whatever
    the code does to the instance before the commit.
    """
    using = using or DEFAULT_DB_ALIAS
    send = functools.partial(send_to_groups, tuple(group_names), message, alias)
    if _only_test_case_transaction(using):
        # Django's TestCase runs each test inside a transaction that never commits, and code
        # under test acts as in autocommit: so do the events, as they would in production.
        send()
        return
    try:
        transaction.on_commit(send, using=using)
    except TransactionManagementError:
        # Autocommit turned off by hand: the caller commits when it likes and Django offers no
        # hook for it. Sending now is the closest to Channels 1.1's behaviour.
        logger.warning("Autocommit is off on database %r with no atomic block; binding events "
                       "are sent before the commit", using)
        send()


def send_to_groups(group_names: Iterable[str], message: dict[str, Any],
                   alias: str | None = None) -> None:
    """Send now to each group; a failure is logged per group and never raised (the commit it
    follows has already happened, and the caller must not see it fail)."""
    for name in group_names:
        try:
            group = Group(name, alias=alias) if alias else Group(name)
            # Not held for the end of a consumer: the change is committed whatever the
            # consumer does next, and a consumer that raised later would drop the event.
            group.send(message, immediately=True)
        except Exception:
            logger.exception("Could not send a binding event to group %r", name)


def request_atomic(using: str) -> transaction.Atomic:
    """The atomic block an inbound request is applied in.

    Marked, so that inside a test's never-committed transaction it counts as part of that
    transaction: events then go out at once as they do for any change made in such a test,
    rather than waiting for a commit that never comes.
    """
    block = transaction.atomic(using=using)
    block._binding_request = True  # type: ignore[attr-defined]
    return block


def _only_test_case_transaction(using: str) -> bool:
    connection = connections[using]
    blocks = getattr(connection, "atomic_blocks", None)
    return bool(connection.in_atomic_block and blocks
                and any(getattr(block, "_from_testcase", False) for block in blocks)
                and all(getattr(block, "_from_testcase", False)
                        or getattr(block, "_binding_request", False) for block in blocks))
