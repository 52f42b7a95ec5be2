"""Service tokens kept in SQLite.

Only a SHA-256 hash of each secret is stored, so nothing (not even someone holding the
database file) can read a secret back. The store is shared between the server's event loop
and test threads, so every call takes one lock; SQLite calls here take microseconds, which
is why the server makes them directly on its event loop.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SCHEMA_VERSION = 1

# Ids look like the product's (15 decimal digits, e.g. 107484341630693) and stay below
# 2**53 so that JavaScript and other double-based JSON clients read them exactly.
ID_MIN = 10**14
ID_MAX = 10**15 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_tokens (
    id                  INTEGER PRIMARY KEY,
    secret_sha256       BLOB    NOT NULL UNIQUE,
    name                TEXT    NOT NULL,
    roles_json          TEXT    NOT NULL,
    expiration          INTEGER,
    last_update         INTEGER NOT NULL,
    dedicated_subject   TEXT,
    is_bootstrap        INTEGER NOT NULL DEFAULT 0,
    created_seq         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS service_tokens_by_creation ON service_tokens (created_seq);
CREATE TABLE IF NOT EXISTS id_sequence (last INTEGER NOT NULL);
"""

_COLUMNS = "id, name, roles_json, expiration, last_update, dedicated_subject, is_bootstrap"


class StoreError(Exception):
    """The database cannot be opened or is not one of ours."""


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class TokenRecord:
    """One stored token; carries no secret."""

    id: int
    name: str
    roles: tuple[str, ...]
    expiration: int | None
    last_update: int
    dedicated_subject: str | None = None
    bootstrap: bool = False


def _record(row: Sequence[object]) -> TokenRecord:
    id_, name, roles_json, expiration, last_update, subject, bootstrap = row
    assert isinstance(id_, int) and isinstance(name, str) and isinstance(roles_json, str)
    assert isinstance(last_update, int)
    assert expiration is None or isinstance(expiration, int)
    assert subject is None or isinstance(subject, str)
    return TokenRecord(
        id=id_,
        name=name,
        roles=tuple(json.loads(roles_json)),
        expiration=expiration,
        last_update=last_update,
        dedicated_subject=subject,
        bootstrap=bool(bootstrap),
    )


class TokenStore:
    """Service tokens in an SQLite file. ``path=None`` uses a throw-away temporary file that
    is removed on ``close()``; giving the same path again finds the same tokens."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._owns_file = path is None
        if path is None:
            fd, temp_path = tempfile.mkstemp(prefix="sts-reference-", suffix=".sqlite3")
            os.close(fd)
            path = temp_path
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        try:
            self._prepare()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{self.path}: cannot use the database: {exc}") from None

    def _prepare(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version not in (0, SCHEMA_VERSION) or (version == 0 and tables):
            raise StoreError(
                f"{self.path}: not a reference-server database (schema version {version}, tables {sorted(tables)})"
            )
        # WAL with synchronous=NORMAL: a committed token survives the process being killed.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def create(
        self,
        *,
        secret: str,
        name: str,
        roles: Sequence[str],
        expiration: int | None,
        now_ms: int,
        dedicated_subject: str | None = None,
        bootstrap: bool = False,
        token_id: int | None = None,
        sequential_id: bool = False,
        lowest_free_id: bool = False,
    ) -> TokenRecord:
        """Store a new token under a fresh random id. Raises ValueError when a token with
        the same secret already exists.

        ``token_id`` stores it under exactly that id instead (only the server's deliberate
        faults choose ids themselves); sqlite3.IntegrityError when the id is taken.
        ``sequential_id`` takes the next number of a counter kept in the database (1, 2, 3,
        ...; never reused, even after the newest token is deleted) instead of a random id;
        ``lowest_free_id`` the smallest positive id no stored token has (a deleted token's id is
        handed to the next one)."""
        digest = hash_secret(secret)
        roles_json = json.dumps(list(roles))
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM service_tokens WHERE secret_sha256 = ?", (digest,)).fetchone():
                raise ValueError("a token with this secret already exists")
            seq = db.execute("SELECT COALESCE(MAX(created_seq), 0) + 1 FROM service_tokens")
            created_seq = seq.fetchone()[0]
            if token_id is None and sequential_id:
                token_id = self._next_sequential_id(db)
            if token_id is None and lowest_free_id:
                token_id = self._lowest_free_id(db)
            while True:
                new_id = token_id if token_id is not None else ID_MIN + secrets.randbelow(ID_MAX - ID_MIN + 1)
                try:
                    db.execute(
                        "INSERT INTO service_tokens (id, secret_sha256, name, roles_json,"
                        " expiration, last_update, dedicated_subject, is_bootstrap, created_seq)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            new_id,
                            digest,
                            name,
                            roles_json,
                            expiration,
                            now_ms,
                            dedicated_subject,
                            int(bootstrap),
                            created_seq,
                        ),
                    )
                except sqlite3.IntegrityError:
                    if token_id is not None:
                        raise
                    continue  # the random id is taken (the secret was checked above)
                break
        return TokenRecord(
            id=new_id,
            name=name,
            roles=tuple(roles),
            expiration=expiration,
            last_update=now_ms,
            dedicated_subject=dedicated_subject,
            bootstrap=bootstrap,
        )

    @staticmethod
    def _next_sequential_id(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT last FROM id_sequence").fetchone()
        if row is None:
            db.execute("INSERT INTO id_sequence (last) VALUES (1)")
            return 1
        db.execute("UPDATE id_sequence SET last = last + 1")
        return int(row[0]) + 1

    @staticmethod
    def _lowest_free_id(db: sqlite3.Connection) -> int:
        row = db.execute(
            "SELECT MIN(candidate) FROM (SELECT 1 AS candidate UNION SELECT id + 1 FROM service_tokens)"
            " WHERE candidate NOT IN (SELECT id FROM service_tokens)"
        ).fetchone()
        return int(row[0])

    def find_by_secret(self, secret: str) -> TokenRecord | None:
        return self.find_by_hash(hash_secret(secret))

    def find_by_hash(self, digest: bytes) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM service_tokens WHERE secret_sha256 = ?", (digest,)
            ).fetchone()
        return None if row is None else _record(row)

    def get(self, token_id: int) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM service_tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[TokenRecord]:
        """All tokens, expired ones included, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM service_tokens ORDER BY created_seq").fetchall()
        return [_record(r) for r in rows]

    def count(self, *, bootstrap: bool = True) -> int:
        """How many tokens are stored; ``bootstrap=False`` leaves the bootstrap token out."""
        query = "SELECT COUNT(*) FROM service_tokens" + ("" if bootstrap else " WHERE is_bootstrap = 0")
        with self._lock:
            return int(self._db.execute(query).fetchone()[0])

    def max_id(self) -> int | None:
        with self._lock:
            value = self._db.execute("SELECT MAX(id) FROM service_tokens").fetchone()[0]
        return None if value is None else int(value)

    def delete(self, token_id: int) -> bool:
        """Remove a token; False when there was none with that id."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM service_tokens WHERE id = ?", (token_id,))
            return cursor.rowcount > 0

    def delete_expired(self, now_ms: int) -> builtins.list[int]:
        """Remove every token whose expiration is at or before ``now_ms``; the ids removed."""
        with self._transaction() as db:
            rows = db.execute(
                "DELETE FROM service_tokens WHERE expiration IS NOT NULL AND expiration <= ? RETURNING id", (now_ms,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def stored_hashes(self) -> builtins.list[bytes]:
        """The secret column as stored, for tests that check no secret is kept."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT secret_sha256 FROM service_tokens")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._owns_file:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path + suffix)

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
