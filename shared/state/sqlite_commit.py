"""Group commit for the SQLite state store: the writes asked for in one event-loop turn are made in
one transaction at the start of the next turn, and each writer's await returns once it is committed.

A commit in WAL mode appends every page the transaction changed to the log, so settles that each
commit alone write the same tally page over and over; in one transaction it is written once. A
writer still returns only after its write is committed, so a message is completed after its state
is stored, as before. The transaction is opened and committed inside one callback with no await in
between: it never stays open while the loop runs something else, and another process on the file
sees a whole turn's writes or none of them.

One bad statement must not fail the writers it happened to share a turn with: when a statement is
refused (a constraint, a value SQLite cannot bind), the turn is rolled back and each writer's write
is made in a transaction of its own, so only the writer whose statement was refused gets the error.
A failure of the database itself (locked past the timeout, I/O, full) goes to every writer.

A conditional write (a state row written only if it is still the revision that was read) is a
"checked" statement: one that must change a row for each time it is made. When one in the turn
changes none, the turn is refused like a bad statement, so the writes are made again each alone and
only the writer whose condition failed gets StateConflictError; a conflict is rare, the fast path
stays one transaction for the turn.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from shared.state.base import StateConflictError

_TALLY = (
    "INSERT INTO outcometally VALUES (?,?,?,?)"
    " ON CONFLICT (scope, bucket, outcome) DO UPDATE SET count=count+excluded.count"
)
_LAST_WRITE = "INSERT INTO lastwrite VALUES (?,?) ON CONFLICT (scope) DO UPDATE SET at=max(at, excluded.at)"

# Errors that belong to one statement rather than to the database (OverflowError: an integer over
# SQLite's 64 bits, which must fail its own writer only, not every writer of the commit).
_STATEMENT_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    OverflowError,
    StateConflictError,
)


Statement = tuple[str, tuple[object, ...]]
Tally = tuple[str, str, str]  # scope, bucket, outcome


@dataclass(slots=True)
class _Write:
    """One writer's part of a commit: statements, counts to add, and the time of a target write."""

    done: asyncio.Future[None]
    statements: tuple[Statement, ...]
    tallies: tuple[Tally, ...]
    written_at: datetime | None
    checked: tuple[Statement, ...] = ()


class TurnCommit:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._pending: list[_Write] = []
        self._scheduled: asyncio.Handle | None = None

    def submit(
        self,
        statements: tuple[Statement, ...] = (),
        tallies: tuple[Tally, ...] = (),
        written_at: datetime | None = None,
        checked: tuple[Statement, ...] = (),
    ) -> asyncio.Future[None]:
        """Make these in the next commit, all or none of them; the future is done once committed.
        A tally adds one to its row; `written_at` moves its scopes' last write on; a `checked`
        statement that changes no row fails the write with StateConflictError."""
        loop = asyncio.get_running_loop()
        write = _Write(loop.create_future(), statements, tallies, written_at, checked)
        self._pending.append(write)
        if self._scheduled is None:
            # call_soon runs after every callback already due in this turn: they all join this commit.
            self._scheduled = loop.call_soon(self._commit)
        return write.done

    def flush(self) -> None:
        """Commit what is pending now (closing the store)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._commit()

    def _commit(self) -> None:
        self._scheduled = None
        writes, self._pending = self._pending, []
        if not writes:
            return
        try:
            self._transaction(writes)
        except _STATEMENT_ERRORS:
            for write in writes:
                try:
                    self._transaction([write])
                except Exception as exc:  # this writer's own error, for it alone
                    _fail(write, exc)
                else:
                    _succeed(write)
            return
        except Exception as exc:  # the database's: no writer's write was made
            for write in writes:
                _fail(write, exc)
            return
        for write in writes:
            _succeed(write)

    def _transaction(self, writes: list[_Write]) -> None:
        statements: dict[str, list[tuple[object, ...]]] = {}
        checked: set[str] = set()
        tallies: Counter[Tally] = Counter()
        latest: dict[str, datetime] = {}
        for write in writes:
            for sql, params in write.statements:
                # Same statement, same order: two writes of one row keep the later, as before.
                statements.setdefault(sql, []).append(params)
            for sql, params in write.checked:
                statements.setdefault(sql, []).append(params)
                checked.add(sql)
            at = write.written_at
            for tally in write.tallies:
                tallies[tally] += 1
                scope = tally[0]
                if at is not None and (scope not in latest or at > latest[scope]):
                    latest[scope] = at
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements.items():
                cursor = db.execute(sql, rows[0]) if len(rows) == 1 else db.executemany(sql, rows)
                if sql in checked and cursor.rowcount != len(rows):
                    # In a turn of several, which one is not known here: each alone (above) tells.
                    raise StateConflictError("the state row changed since it was read")
            if tallies:
                db.executemany(_TALLY, [(*row, n) for row, n in tallies.items()])
            if latest:
                db.executemany(_LAST_WRITE, [(scope, at.isoformat()) for scope, at in latest.items()])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _succeed(write: _Write) -> None:
    if not write.done.done():
        write.done.set_result(None)


def _fail(write: _Write, exc: BaseException) -> None:
    if not write.done.done():
        write.done.set_exception(exc)
