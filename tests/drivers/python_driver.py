"""A Python driver's workload through a pooler, for tests/it/drivers.rs.

Usage: python_driver.py DRIVER MODE

DRIVER: psycopg2, psycopg, sqlalchemy, sqlalchemy-psycopg, asyncpg,
sqlalchemy-asyncpg (poolwright's --driver names).

MODE:
  snippet  run the settings snippet poolwright printed (env POOLWRIGHT_SNIPPET)
           to get the object it defines (`conn` or `engine`); a snippet with
           no code means the driver needs nothing: connect the default way.
  plain    connect the library's default way with the URL alone.

Environment: DATABASE_URL (the URL poolwright printed, which the snippets
read), POOLWRIGHT_SNIPPET, CLIENTS (default 6), ROUNDS (default 40),
CHURN (default 110).

The workload: CLIENTS concurrent connections, each running the same
parameterised SELECT ROUNDS times, each time in its own transaction (psycopg 3
and asyncpg alternate explicit ones and autocommit), so that behind a
transaction pooler with a small pool consecutive statements of one client land
on different server connections. Drivers that prepare statements (psycopg 3
after 5 executions, asyncpg always) then need the pooler to track them. Client
0 first runs CHURN distinct statements 7 times each: more than the drivers'
statement caches hold (100), so the drivers also deallocate statements, which a
pooler must see too (psycopg sends SQL DEALLOCATE unless its libpq is >= 17).

Prints `LIB <versions>`, then `OK <statements>` and exits 0; on the first error
prints `ERROR <type>: <message> [<which client and statement>]` and exits 1.
PSYCOPG_IMPL=python makes psycopg use the system's libpq instead of the one
psycopg[binary] bundles.
"""

import ast
import asyncio
import faulthandler
import os
import sys
import textwrap
import threading
import traceback

import asyncpg
import psycopg
import psycopg2
import sqlalchemy

# A hung run (a pool that never frees a connection) must not hang the test.
faulthandler.dump_traceback_later(60, exit=True)

DRIVER, MODE = sys.argv[1], sys.argv[2]
URL = os.environ["DATABASE_URL"]
SNIPPET = os.environ.get("POOLWRIGHT_SNIPPET", "")
CLIENTS = int(os.environ.get("CLIENTS", "6"))
ROUNDS = int(os.environ.get("ROUNDS", "40"))
CHURN = int(os.environ.get("CHURN", "110"))
# More than psycopg's prepare_threshold (5): the 6th execution prepares.
CHURN_REPEAT = 7

# What the snippets assume is imported.
PRELUDE = {"os": os, "asyncpg": asyncpg, "psycopg": psycopg}


def versions():
    return (
        f"python {sys.version.split()[0]}, sqlalchemy {sqlalchemy.__version__}, "
        f"psycopg2 {psycopg2.__version__.split()[0]}, "
        f"psycopg {psycopg.__version__} (impl {psycopg.pq.__impl__}, libpq {psycopg.pq.version()}), "
        f"asyncpg {asyncpg.__version__}"
    )


def snippet_has_code():
    """False for an empty or comments-only snippet: the driver needs nothing."""
    return bool(ast.parse(SNIPPET).body)


def run_snippet(name):
    """Executes the snippet at top level and returns the `name` it defines."""
    namespace = dict(PRELUDE)
    exec(compile(SNIPPET, "<poolwright snippet>", "exec"), namespace)
    if name not in namespace:
        raise LookupError(f"the snippet defines no `{name}`:\n{SNIPPET}")
    return namespace[name]


async def run_async_snippet(name):
    """Like run_snippet, for snippets with top-level `await` (asyncpg's):
    indented into an `async def` that returns its locals."""
    source = (
        "async def __poolwright_snippet__():\n"
        + textwrap.indent(SNIPPET, "    ")
        + "\n    return locals()\n"
    )
    namespace = dict(PRELUDE)
    exec(compile(source, "<poolwright snippet>", "exec"), namespace)
    defined = await namespace["__poolwright_snippet__"]()
    if name not in defined:
        raise LookupError(f"the snippet defines no `{name}`:\n{SNIPPET}")
    return defined[name]


def use_snippet():
    return MODE == "snippet" and snippet_has_code()


def check(got, want):
    if got != want:
        raise AssertionError(f"query returned {got!r}, expected {want!r}")


# --- what one client runs, per driver -------------------------------------
# `statements(k, param)` yields (sql, value, expected) for client k: the
# churn first for client 0, then ROUNDS executions of the same statement.
# `param` is the driver's spelling of the integer parameter.


# Where each client is, for the error message: client -> (number, sql).
POSITION = {}


def statements(k, param):
    def items():
        if k == 0:
            for n in range(CHURN):
                for _ in range(CHURN_REPEAT):
                    yield f"SELECT {param} + {n + 2}", k, k + n + 2
        for i in range(ROUNDS):
            # Small values: psycopg 3 picks the parameter type (int2/int4/...)
            # by value, and a new type would be a new statement.
            value = k * 1000 + i
            yield f"SELECT {param} + 1", value, value + 1

    for n, item in enumerate(items(), start=1):
        POSITION[k] = (n, item[0])
        yield item


def locate(error, k):
    """Notes on `error` which statement of client k failed."""
    if not hasattr(error, "poolwright_where") and k in POSITION:
        n, sql = POSITION[k]
        error.poolwright_where = f"client {k}, its statement #{n}: {sql}"


# SQLAlchemy's text() would read `:v::int` as no parameter at all.
SQLALCHEMY_PARAM = "CAST(:v AS int)"


def sync_clients(work):
    """Runs work(k) for k in 0..CLIENTS on threads started together; returns
    the number of statements, re-raising the first error."""
    start = threading.Barrier(CLIENTS)
    counts, errors = [0] * CLIENTS, []

    def client(k):
        try:
            counts[k] = work(k, start)
        except BaseException as e:  # noqa: BLE001 - reported below
            locate(e, k)
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A client that failed before the start broke the barrier for the others.
    errors.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
    if errors:
        raise errors[0]
    return sum(counts)


def psycopg2_work(k, start):
    if use_snippet():
        raise LookupError(f"a psycopg2 snippet with code is not expected:\n{SNIPPET}")
    conn = psycopg2.connect(URL)
    try:
        start.wait()
        n = 0
        for sql, value, want in statements(k, "%s::int"):
            with conn:  # one transaction, committed on exit
                with conn.cursor() as cur:
                    cur.execute(sql, (value,))
                    check(cur.fetchone()[0], want)
            n += 1
        return n
    finally:
        conn.close()


def psycopg_work(k, start):
    conn = run_snippet("conn") if use_snippet() else psycopg.connect(URL)
    try:
        conn.autocommit = True
        start.wait()
        n = 0
        for i, (sql, value, want) in enumerate(statements(k, "%s::int")):
            if i % 2 == 0:
                with conn.transaction():
                    check(conn.execute(sql, (value,)).fetchone()[0], want)
            else:
                check(conn.execute(sql, (value,)).fetchone()[0], want)
            n += 1
        return n
    finally:
        conn.close()


def sqlalchemy_engine():
    if use_snippet():
        return run_snippet("engine")
    # Plain: SQLAlchemy's defaults (QueuePool), with the URL's scheme
    # choosing the DBAPI (postgresql = psycopg2, postgresql+psycopg = psycopg 3).
    return sqlalchemy.create_engine(URL)


def sqlalchemy_run(engine):
    def work(k, start):
        # One connection held across transactions: what keeps a DBAPI
        # connection (and its prepared statements) alive between them.
        with engine.connect() as conn:
            start.wait()
            n = 0
            for sql, value, want in statements(k, SQLALCHEMY_PARAM):
                with conn.begin():
                    got = conn.execute(sqlalchemy.text(sql), {"v": value}).scalar_one()
                check(got, want)
                n += 1
            return n

    try:
        return sync_clients(work)
    finally:
        engine.dispose()


async def async_clients(work):
    """Runs work(k) for k in 0..CLIENTS concurrently; re-raises the first error."""
    results = await asyncio.gather(*(work(k) for k in range(CLIENTS)), return_exceptions=True)
    errors = [(k, r) for k, r in enumerate(results) if isinstance(r, BaseException)]
    if errors:
        k, error = errors[0]
        locate(error, k)
        raise error
    return sum(results)


async def asyncpg_main():
    async def work(k):
        conn = await (run_async_snippet("conn") if use_snippet() else asyncpg.connect(URL))
        try:
            n = 0
            for i, (sql, value, want) in enumerate(statements(k, "$1::int")):
                if i % 2 == 0:
                    async with conn.transaction():
                        check(await conn.fetchval(sql, value), want)
                else:
                    check(await conn.fetchval(sql, value), want)
                n += 1
            return n
        finally:
            await conn.close()

    return await async_clients(work)


async def sqlalchemy_asyncpg_main():
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = run_snippet("engine") if use_snippet() else create_async_engine(URL)

    async def work(k):
        async with engine.connect() as conn:
            n = 0
            for sql, value, want in statements(k, SQLALCHEMY_PARAM):
                async with conn.begin():
                    result = await conn.execute(sqlalchemy.text(sql), {"v": value})
                    check(result.scalar_one(), want)
                n += 1
            return n

    try:
        return await async_clients(work)
    finally:
        await engine.dispose()


def main():
    print(f"LIB {versions()}", flush=True)
    if MODE not in ("snippet", "plain"):
        raise SystemExit(f"unknown mode {MODE!r}")
    if DRIVER == "psycopg2":
        count = sync_clients(psycopg2_work)
    elif DRIVER == "psycopg":
        count = sync_clients(psycopg_work)
    elif DRIVER in ("sqlalchemy", "sqlalchemy-psycopg"):
        count = sqlalchemy_run(sqlalchemy_engine())
    elif DRIVER == "asyncpg":
        count = asyncio.run(asyncpg_main())
    elif DRIVER == "sqlalchemy-asyncpg":
        count = asyncio.run(sqlalchemy_asyncpg_main())
    else:
        raise SystemExit(f"unknown driver {DRIVER!r}")
    print(f"OK {count}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads the message
        traceback.print_exc(file=sys.stderr)
        message = " ".join(str(e).split())
        where = getattr(e, "poolwright_where", None)
        where = f" [{where}]" if where else ""
        print(f"ERROR {type(e).__module__}.{type(e).__name__}: {message}{where}", flush=True)
        sys.exit(1)
