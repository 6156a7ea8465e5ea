"""SQLite-specific guarantees: state and watch history survive a restart; leased keys do not."""

from __future__ import annotations

from netmaster.store.sqlite import SqliteStore


async def test_restart_keeps_keys_revision_and_history(tmp_path) -> None:
    path = tmp_path / "db" / "state.db"
    s = SqliteStore(path)
    await s.put("/a", "1")
    mid = await s.revision()
    await s.put("/b", "2")
    lease = await s.lease_grant(60)
    await s.put("/leased", "x", lease=lease)
    rev = await s.revision()
    await s.close()

    s = SqliteStore(path)
    try:
        assert (await s.get("/a")).value == "1"
        assert await s.get("/leased") is None, "leases do not outlive the process"
        assert await s.revision() == rev + 1  # the lease cleanup is a write
        seen = []
        async for ev in s.watch("/", mid):
            seen.append((ev.type.value, ev.key))
            if len(seen) == 3:
                break
        assert seen == [("put", "/b"), ("put", "/leased"), ("delete", "/leased")]
    finally:
        await s.close()


def test_unwritable_path_is_a_clear_error(tmp_path) -> None:
    import pytest

    from netmaster.store.base import StoreUnavailableError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailableError, match="cannot open state database"):
        SqliteStore(blocker / "sub" / "state.db")
