"""A write transaction that holds the write lock from its first statement (BEGIN IMMEDIATE).

A deferred transaction that reads and then writes can find another process's commit in between and fail
with "database is locked" at once, without waiting; taking the lock first makes a read-then-write atomic
across processes and lets the busy timeout do the waiting.
"""

from contextlib import contextmanager


@contextmanager
def immediate(db):
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()
