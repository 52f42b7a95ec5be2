"""The SQLite token store: hashes only, product-like ids, persistence across restarts."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from sts_reference.store import StoreError, TokenRecord, TokenStore, hash_secret

NOW = 1_700_000_000_000


def make(store: TokenStore, secret: str, name: str = "n", **extra: object) -> TokenRecord:
    options: dict[str, object] = {"roles": ["r"], "expiration": None, "now_ms": NOW, **extra}
    return store.create(secret=secret, name=name, **options)  # type: ignore[arg-type]


def test_store_keeps_only_a_sha256_of_the_secret(tmp_path: Path) -> None:
    """The database file holds the secret's SHA-256 and never the secret itself."""
    path = tmp_path / "tokens.sqlite3"
    secret = "svctok-never-stored-in-clear"
    with TokenStore(path) as store:
        make(store, secret)
        assert store.stored_hashes() == [hashlib.sha256(secret.encode()).digest()]
    for file in tmp_path.iterdir():
        assert secret.encode() not in file.read_bytes()


def test_store_ids_look_like_product_ids_and_fit_a_double() -> None:
    """Ids are positive 15-digit numbers below 2**53, so JSON clients read them exactly."""
    with TokenStore(None) as store:
        ids = [make(store, f"s{i}").id for i in range(200)]
    assert len(set(ids)) == len(ids)
    for token_id in ids:
        assert len(str(token_id)) == 15 and 0 < token_id < 2**53


def test_store_ids_unique_under_concurrent_creation() -> None:
    """Tokens created from many threads at once all get distinct ids."""
    with TokenStore(None) as store:
        ids: list[int] = []
        lock = threading.Lock()

        def create_many(worker: int) -> None:
            for i in range(50):
                record = make(store, f"w{worker}-{i}")
                with lock:
                    ids.append(record.id)

        threads = [threading.Thread(target=create_many, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ids) == len(set(ids)) == 400
        assert len(store.list()) == 400


def test_store_data_survives_reopening_the_same_file(tmp_path: Path) -> None:
    """Closing and reopening the same file finds the same tokens, fields intact."""
    path = tmp_path / "tokens.sqlite3"
    with TokenStore(path) as store:
        created = make(
            store,
            "s1",
            name="ci",
            expiration=NOW + 5,
            dedicated_subject="svc-user",
            bootstrap=True,
        )
    with TokenStore(path) as store:
        assert store.list() == [created]
        assert store.find_by_secret("s1") == created
        assert store.get(created.id) == created


def test_store_lookup_delete_and_listing_order() -> None:
    """Lookups find by secret or id; delete removes; the list is oldest first."""
    with TokenStore(None) as store:
        first = make(store, "s1", name="b")
        second = make(store, "s2", name="a")
        assert [r.id for r in store.list()] == [first.id, second.id]
        assert store.find_by_hash(hash_secret("s2")) == second
        assert store.find_by_secret("nope") is None
        assert store.delete(first.id) is True
        assert store.delete(first.id) is False
        assert store.get(first.id) is None
        assert store.list() == [second]


def test_store_refuses_a_second_token_with_the_same_secret() -> None:
    """Two tokens can never share a secret, or one would authenticate as the other."""
    with TokenStore(None) as store:
        make(store, "same")
        with pytest.raises(ValueError, match="already exists"):
            make(store, "same")
        assert len(store.list()) == 1


def test_store_temporary_file_removed_on_close() -> None:
    """The throw-away database leaves nothing behind."""
    store = TokenStore(None)
    path = Path(store.path)
    assert path.exists()
    store.close()
    assert not path.exists()


def test_store_refuses_a_file_that_is_not_its_database(tmp_path: Path) -> None:
    """Pointing the store at some other file is a clear StoreError and leaves it untouched."""
    other = tmp_path / "authentication.yaml"
    other.write_text("stackstate: {}\n" * 200)
    with pytest.raises(StoreError, match="cannot use the database"):
        TokenStore(other)
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(StoreError, match="not a reference-server database"):
        TokenStore(foreign)
