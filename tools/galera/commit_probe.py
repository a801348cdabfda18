"""Does a Galera node's answer to COMMIT say what happened?

A measurement, not a test of Delimiter: it decides which stores need the
commit marker (host-rust/src/stores/mariadb.rs). W threads, worker i on node
i mod 3, run for S seconds the shape of a consume's commit on two hot
generation rows (root and one of two children), with PyMySQL:

    set this connection's marker row to a fresh seq
    UPDATE generation + 1 WHERE generation = <read>, root then child
    upsert the worker's own usage row
    COMMIT, then read the marker back (on the same node)

and sorts every COMMIT by (its answer, whether the marker holds the seq).
At the end, each generation must equal the number of commits the markers
saw, and each worker's usage its own count. Any COMMIT that said OK for a
rolled-back transaction (`ok/False`), an error for one that took effect
(`err .../True`), or a lost or doubled write prints FAULT and exits 1.

--mode picks how the statements are sent:
  statements          autocommit off, one statement per round trip
                      (SqlAlchemyStore: SQLAlchemy's MySQL connections run
                      with the DBAPI's autocommit off)
  packet              autocommit off, marker to usage in one multi-statement
  autocommit-packet   autocommit on, `START TRANSACTION; ...` in one
                      multi-statement (MariadbStore's SQL without its marker)

Measured on MariaDB 10.11.19 / Galera 4 (tools/galera/galera.sh up, 16
workers, 60 s each, two cores shared with other work): `autocommit-packet`
FAULT (of 4,269 commits, 6 COMMITs answered OK for a rolled-back
transaction whose later statements had run outside it: 6 generation bumps
and 34 usage increments that no commit made); `statements` clean (3,225
commits, 3,635 COMMITs refused), `packet` clean (3,744 and 3,938). Usage:

    export $(tools/galera/galera.sh env)
    .venv-delimiter/bin/python tools/galera/commit_probe.py --mode statements
"""

import argparse
import os
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import pymysql
from pymysql.constants import CLIENT

MARK = "INSERT INTO probe_markers VALUES (%s, %s) ON DUPLICATE KEY UPDATE seq = VALUES(seq)"
BUMP = "UPDATE probe_generations SET generation = generation + 1 WHERE project = %s AND generation = %s"
USE = "INSERT INTO probe_usage VALUES (%s, %s, 1) ON DUPLICATE KEY UPDATE n = n + 1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["statements", "packet", "autocommit-packet"], default="statements")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    urls = os.environ.get("DELIMITER_TEST_GALERA_URLS")
    if not urls:
        print("commit_probe: DELIMITER_TEST_GALERA_URLS is not set (tools/galera/galera.sh env)")
        return 2
    nodes = [urlsplit(u.strip()) for u in urls.split(",")]
    autocommit = args.mode == "autocommit-packet"
    packet = args.mode != "statements"

    def connect(i: int, autocommit: bool = autocommit) -> pymysql.Connection:
        n = nodes[i % len(nodes)]
        conn = pymysql.connect(
            host=n.hostname,
            port=n.port or 3306,
            user=n.username or "root",
            password=n.password or "",
            database=n.path.lstrip("/") or "test",
            autocommit=autocommit,
            client_flag=CLIENT.MULTI_STATEMENTS if packet else 0,
        )
        conn.cursor().execute("SET SESSION wsrep_sync_wait = 1")
        return conn

    setup = connect(0, autocommit=True)
    for sql in [
        "DROP TABLE IF EXISTS probe_generations, probe_markers, probe_usage",
        "CREATE TABLE probe_generations (project VARCHAR(16) PRIMARY KEY, generation BIGINT NOT NULL)",
        "CREATE TABLE probe_markers (token CHAR(36) PRIMARY KEY, seq BIGINT NOT NULL)",
        "CREATE TABLE probe_usage (project VARCHAR(16), worker INT, n BIGINT NOT NULL, PRIMARY KEY (project, worker))",
        "INSERT INTO probe_generations VALUES ('root', 0), ('a', 0), ('b', 0)",
    ]:
        setup.cursor().execute(sql)

    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    took_effect = {"root": 0, "a": 0, "b": 0}
    own_commits: dict[int, int] = {}
    stop = time.monotonic() + args.seconds

    def count(key: str) -> None:
        with lock:
            outcomes[key] = outcomes.get(key, 0) + 1

    def rollback(conn: pymysql.Connection) -> None:
        try:
            conn.rollback()
        except pymysql.MySQLError:
            count("rollback-error")

    def attempt(cur: pymysql.cursors.Cursor, token: str, seq: int, worker: int, child: str, gens: dict) -> bool:
        """The transaction's statements; False on a generation miss."""
        if not packet:
            cur.execute(MARK, (token, seq))
            for p in ("root", child):
                if cur.execute(BUMP, (p, gens[p])) != 1:
                    return False
            cur.execute(USE, (child, worker))
            return True
        statements = [(MARK, (token, seq)), (BUMP, ("root", gens["root"])), (BUMP, (child, gens[child])), (USE, (child, worker))]
        sql = ("START TRANSACTION; " if autocommit else "") + "; ".join(
            cur.mogrify(s, a) for s, a in statements
        )
        cur.execute(sql)
        counts = [cur.rowcount]
        while cur.nextset():
            counts.append(cur.rowcount)
        compares = counts[1 + int(autocommit) : 3 + int(autocommit)]
        return compares == [1, 1]

    def worker(i: int) -> None:
        conn = connect(i)
        cur = conn.cursor()
        token, seq, mine = str(uuid.uuid4()), 0, 0
        child = "a" if i % 2 else "b"
        while time.monotonic() < stop:
            cur.execute("SELECT project, generation FROM probe_generations WHERE project IN ('root', %s)", (child,))
            gens = dict(cur.fetchall())
            conn.commit()
            seq += 1
            try:
                if not attempt(cur, token, seq, i, child, gens):
                    rollback(conn)
                    count("generation-miss")
                    continue
            except pymysql.MySQLError as e:
                count(f"statement-error {e.args[0]}")
                rollback(conn)
                continue
            try:
                conn.commit()
                answer = "ok"
            except pymysql.MySQLError as e:
                answer = f"err {e.args[0]}"
                rollback(conn)
            stored = None
            for _ in range(10):  # a stale abort can reach this read too
                try:
                    cur.execute("SELECT seq FROM probe_markers WHERE token = %s", (token,))
                    stored = cur.fetchone()
                    conn.commit()
                    break
                except pymysql.MySQLError:
                    rollback(conn)
            took = stored is not None and stored[0] == seq
            count(f"{answer}/{took}")
            if took:
                mine += 1
                with lock:
                    took_effect["root"] += 1
                    took_effect[child] += 1
        with lock:
            own_commits[i] = mine
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    cur = connect(0, autocommit=True).cursor()
    cur.execute("SELECT project, generation FROM probe_generations")
    generations = dict(cur.fetchall())
    cur.execute("SELECT worker, n FROM probe_usage")
    usage = dict(cur.fetchall())
    wrong_usage = {w: (usage.get(w, 0), n) for w, n in own_commits.items() if usage.get(w, 0) != n}
    print(f"commit_probe --mode {args.mode}: {args.workers} workers, {args.seconds:g} s")
    print("outcomes (COMMIT's answer/took effect):", dict(sorted(outcomes.items())))
    print("generations:", dict(sorted(generations.items())), "commits that took effect:", dict(sorted(took_effect.items())))
    print("usage rows off (stored, took effect):", wrong_usage)
    misreported = sum(n for k, n in outcomes.items() if k == "ok/False" or (k.startswith("err") and k.endswith("/True")))
    fault = misreported or generations != took_effect or wrong_usage
    print("FAULT" if fault else "clean")
    return 1 if fault else 0


if __name__ == "__main__":
    sys.exit(main())
