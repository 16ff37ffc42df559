"""alpenglow.runtime.containers: records, states, lookup by id, prefix and name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alpenglow.errors import AlpenglowError, ContainerNotFound, FormatError, UsageError
from alpenglow.runtime import containers
from alpenglow.runtime.containers import (
    CREATED,
    EXITED,
    RUNNING,
    Container,
    ContainerStore,
    State,
    check_name,
    default_runtime_dir,
    format_time,
    new_id,
    parse_time,
    process_start_time,
    random_name,
    valid_name,
)


def record(container_id: str, name: str, created: str = "2024-01-01T00:00:00.000000Z") -> Container:
    return Container(
        id=container_id,
        name=name,
        created=created,
        image="alpine-base",
        image_id="sha256:" + "a" * 64,
        manifest="sha256:" + "b" * 64,
        platform="linux/amd64",
        layers=("sha256:" + "c" * 64,),
        args=("/bin/sh", "-c", "echo hi"),
    )


def test_exports() -> None:
    assert sorted(containers.__all__) == sorted(dir(containers))


def test_runtime_dir_from_environment() -> None:
    assert default_runtime_dir({"ALPENGLOW_RUNTIME_DIR": "/x"}) == Path("/x")
    assert default_runtime_dir({"XDG_DATA_HOME": "/d", "HOME": "/h"}) == Path(
        "/d/alpenglow/runtime"
    )
    assert default_runtime_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.local/share/alpenglow/runtime"
    )


def test_ids_names_and_times() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    for container_id in ids:
        assert len(container_id) == 64
        assert int(container_id, 16) >= 0
        assert not container_id[:12].isdigit()
    for _ in range(50):
        assert valid_name(random_name())
    assert valid_name("web.1_a-b")
    assert not valid_name("-x")
    assert not valid_name("a/b")
    assert not valid_name("x" * 129)
    with pytest.raises(UsageError, match="invalid container name"):
        check_name("bad name")
    stamp = format_time(1_700_000_000.25)
    assert stamp == "2023-11-14T22:13:20.250000Z"
    assert parse_time(stamp) == 1_700_000_000.25
    assert parse_time("") == 0.0


def test_process_identity() -> None:
    mine = process_start_time(os.getpid())
    assert mine is not None
    assert mine > 0
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert process_start_time(int(done.stdout)) is None  # gone (reaped)
    assert State(monitor_pid=os.getpid(), monitor_start=mine).monitor_alive()
    assert not State(monitor_pid=os.getpid(), monitor_start=mine + 1).monitor_alive()
    assert not State().monitor_alive()


def test_states_round_trip_and_keep_unknown_keys() -> None:
    state = State().started(pid=42, monitor_pid=os.getpid())
    assert state.status == RUNNING
    assert state.pid == 42
    assert state.started_at
    assert state.monitor_alive()
    exited = state.exited(3)
    assert (exited.status, exited.exit_code, exited.pid) == (EXITED, 3, 0)
    assert exited.finished_at >= exited.started_at
    data = exited.to_json()
    data["supervisor_socket"] = "/run/x.sock"  # written by someone newer
    again = State.from_json(json.loads(json.dumps(data)), "state.json")
    assert again.to_json() == data
    with pytest.raises(FormatError, match="not a container state"):
        State.from_json({"status": "flying"}, "state.json")
    with pytest.raises(FormatError, match="not a container state"):
        State.from_json([], "state.json")


def test_store_create_find_and_delete(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path / "rt")
    assert store.list() == []
    a = record("ab" + "0" * 62, "first", "2024-01-01T00:00:00.000000Z")
    b = record("ac" + "1" * 62, "second", "2024-01-02T00:00:00.000000Z")
    c = record("bc" + "2" * 62, "ab", "2024-01-03T00:00:00.000000Z")
    for item in (a, b, c):
        written, paths = store.create(item)
        assert written == item
        assert paths.record.is_file()
        assert paths.state.is_file()
        assert oct(paths.dir.stat().st_mode & 0o777) == "0o700"
    assert [r.name for r in store.list()] == ["ab", "second", "first"]  # newest first
    assert store.record(a.id) == a
    assert store.state(a.id) == State(status=CREATED)
    assert store.find(a.id) == a
    assert store.find("first") == a
    assert store.find("/second") == b
    assert store.find("ab") == c  # a name wins over an id prefix
    assert store.find("ab0") == a
    assert store.find("bc2") == c
    with pytest.raises(AlpenglowError, match="ambiguous"):
        store.find("a")
    with pytest.raises(ContainerNotFound, match="no such container: zz"):
        store.find("zz")
    with pytest.raises(ContainerNotFound):
        store.find("")
    with pytest.raises(UsageError, match='name "/first" is already in use'):
        store.create(record(new_id(), "first"))
    assert store.layers_in_use() == {"sha256:" + "c" * 64}
    assert store.set_state(a.id, State().started(1, os.getpid()))
    assert store.state(a.id).status == RUNNING
    store.delete(a.id)
    assert not store.paths(a.id).dir.exists()
    assert not store.set_state(a.id, State())  # removed: nothing is written
    assert not store.paths(a.id).dir.exists()
    store.delete(a.id)  # twice is fine
    assert [r.name for r in store.list()] == ["ab", "second"]
    leftovers = [p for p in os.listdir(store.paths(b.id).dir) if p.startswith(".tmp")]
    assert leftovers == []


def test_generated_names_are_unique(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    names = set()
    for _ in range(40):
        written, _paths = store.create(record(new_id(), ""))
        names.add(written.name)
        assert valid_name(written.name)
    assert len(names) == 40
    assert {r.name for r in store.list()} == names
    assert store.free_name() not in names


def test_damaged_records_are_skipped_or_reported(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    good = record(new_id(), "good")
    store.create(good)
    bad = store.paths(new_id())
    bad.dir.mkdir()
    bad.record.write_text("{not json")
    (store.path / "not-a-container").mkdir()
    assert [r.name for r in store.list()] == ["good"]
    with pytest.raises(FormatError, match="not valid JSON"):
        store.record(bad.dir.name)
    with pytest.raises(ValueError, match="bad container id"):
        store.paths("../../etc")


def test_lock_is_reentrant(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    with store.locked(), store.locked():
        store.create(record(new_id(), "inside"))
    assert [r.name for r in store.list()] == ["inside"]
