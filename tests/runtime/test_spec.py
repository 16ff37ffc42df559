"""alpenglow.runtime.spec: flags and image settings turned into an OCI runtime config."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from alpenglow.errors import ContainerError, UsageError
from alpenglow.runtime import spec
from alpenglow.runtime.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    BindMount,
    ProcessUser,
    container_env,
    hosts_file,
    parse_env,
    parse_env_file,
    parse_signal,
    parse_volume,
    process_args,
    resolve_user,
    runtime_config,
)

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:2:2:daemon:/sbin:/sbin/nologin\n"
    "# a comment\n"
    "app:x:10000:10000:App:/home/app:/bin/sh\n"
    "nohome:x:20:21:::/bin/sh\n"
)
GROUP = "root:x:0:root\nwheel:x:10:root,app\napp:x:10000:\naudio:x:18:app\nstaff:x:50:\n"


def test_exports() -> None:
    assert sorted(spec.__all__) == sorted(dir(spec))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/srv:/data", BindMount("/srv", "/data", False)),
        ("/srv:/data:ro", BindMount("/srv", "/data", True)),
        ("/srv:/data:rw", BindMount("/srv", "/data", False)),
        ("/srv/../etc//x/:/a/./b", BindMount("/etc/x", "/a/b", False)),
        ("./here:/w", BindMount("/home/u/here", "/w", False)),
        ("../up:/w:ro,z", BindMount("/home/up", "/w", True)),
    ],
)
def test_volumes(text: str, expected: BindMount) -> None:
    assert parse_volume(text, "/home/u") == expected
    assert parse_volume(str(expected), "/") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/srv", "expected HOST:CONTAINER"),
        ("/a:/b:/c:/d", "expected HOST:CONTAINER"),
        (":/b", "expected HOST:CONTAINER"),
        ("myvolume:/data", "named volumes are not supported"),
        ("/srv:data", "must be absolute"),
        ("/srv:/", "cannot mount over"),
        ("/srv:/data:rx", "unknown option 'rx'"),
    ],
)
def test_bad_volumes(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_volume(text, "/")


def test_env_flags_and_files() -> None:
    host = {"HOSTVAR": "from host", "EMPTY": ""}
    assert parse_env(["A=1", "B=", "C=x=y", "HOSTVAR", "MISSING", "EMPTY"], host) == (
        "A=1",
        "B=",
        "C=x=y",
        "HOSTVAR=from host",
        "EMPTY=",
    )
    text = '# comment\n\nA=1\n  B="quoted"\nHOSTVAR\nC = spaced\n'
    with pytest.raises(UsageError, match=r"env.list:6: invalid environment variable"):
        parse_env_file(text, "env.list", host)
    text = '# comment\n\nA=1\n  B="quoted"\nHOSTVAR\n'
    assert parse_env_file(text, "env.list", host) == ("A=1", 'B="quoted"', "HOSTVAR=from host")
    for bad in ("=x", "A B=1", ""):
        with pytest.raises(UsageError, match="invalid environment variable"):
            parse_env([bad], {})


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("SIGTERM", signal.SIGTERM),
        ("term", signal.SIGTERM),
        ("SIGKILL", signal.SIGKILL),
        ("QUIT", signal.SIGQUIT),
        ("15", 15),
        ("SIGRTMIN+3", signal.SIGRTMIN + 3),
        ("SIGRTMAX", signal.SIGRTMAX),
    ],
)
def test_signals(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["", "SIGNOPE", "0", "999", "SIG_DFL", "SIGRTMIN+99", "-9"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(UsageError, match="invalid signal"):
        parse_signal(text)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", ProcessUser(0, 0, (10,), "/root", "root")),
        ("root", ProcessUser(0, 0, (10,), "/root", "root")),
        ("app", ProcessUser(10000, 10000, (10, 18), "/home/app", "app")),
        ("10000", ProcessUser(10000, 10000, (10, 18), "/home/app", "app")),
        ("app:staff", ProcessUser(10000, 50, (), "/home/app", "app")),
        ("app:wheel", ProcessUser(10000, 10, (), "/home/app", "app")),
        ("app:7", ProcessUser(10000, 7, (), "/home/app", "app")),
        ("4242", ProcessUser(4242, 0, (), "/", "")),
        ("4242:4343", ProcessUser(4242, 4343, (), "/", "")),
        ("nohome", ProcessUser(20, 21, (), "/", "nohome")),
    ],
)
def test_users(user: str, expected: ProcessUser) -> None:
    assert resolve_user(user, PASSWD, GROUP) == expected


def test_unknown_users_and_groups() -> None:
    with pytest.raises(ContainerError, match="unable to find user nobody: no matching entries"):
        resolve_user("nobody", PASSWD, GROUP)
    with pytest.raises(ContainerError, match="unable to find group nogroup"):
        resolve_user("app:nogroup", PASSWD, GROUP)
    with pytest.raises(ContainerError, match="unable to find user app"):
        resolve_user("app", None, None)  # an image without /etc/passwd
    assert resolve_user("0", None, None) == ProcessUser(0, 0, (), "/", "")


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "flag", "command", "expected"),
    [
        (None, ["/bin/sh"], None, [], ("/bin/sh",)),
        (None, ["/bin/sh"], None, ["echo", "hi"], ("echo", "hi")),
        (["/bin/cat"], ["index.html"], None, [], ("/bin/cat", "index.html")),
        (["/bin/cat"], ["index.html"], None, ["other"], ("/bin/cat", "other")),
        (["/bin/cat"], ["index.html"], "/bin/ls", [], ("/bin/ls",)),
        (["/bin/cat"], ["index.html"], "/bin/ls", ["-l"], ("/bin/ls", "-l")),
        (["/bin/cat"], ["index.html"], "", ["echo", "x"], ("echo", "x")),
    ],
)
def test_command_lines(
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    flag: str | None,
    command: list[str],
    expected: tuple[str, ...],
) -> None:
    assert process_args(entrypoint, cmd, flag, command) == expected


def test_no_command_at_all() -> None:
    with pytest.raises(UsageError, match="no command specified"):
        process_args(None, None, None, [])
    with pytest.raises(UsageError, match="no command specified"):
        process_args(["/bin/cat"], None, "", [])


def test_environment_order_and_defaults() -> None:
    env = container_env(
        ["PATH=/usr/bin:/bin", "A=image", "B=image"],
        ["B=flag", "C=flag"],
        hostname="box",
        home="/home/app",
        tty=True,
    )
    assert env == (
        "PATH=/usr/bin:/bin",
        "HOSTNAME=box",
        "A=image",
        "B=flag",
        "C=flag",
        "TERM=xterm",
        "HOME=/home/app",
    )
    env = container_env([], ["HOME=/x", "TERM=dumb"], hostname="h", home="/root", tty=True)
    assert env == (f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "HOME=/x", "TERM=dumb")


def test_hosts_files() -> None:
    own = hosts_file("box", "none")
    assert "127.0.0.1\tlocalhost\n" in own
    assert own.endswith("127.0.1.1\tbox\n")
    assert hosts_file("box", "host", "127.0.0.1 localhost myhost") == "127.0.0.1 localhost myhost\n"
    assert hosts_file("box", "host", None) == own


def config(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "args": ["/bin/sh", "-c", "echo hi"],
        "env": ["PATH=/bin"],
        "cwd": "/srv",
        "user": ProcessUser(10000, 10000, (10,), "/home/app", "app"),
        "hostname": "box",
        "network": "none",
        "tty": False,
    }
    values.update(changes)
    return runtime_config(**values)


def test_config_is_docker_like() -> None:
    out = config(
        mounts=[BindMount("/srv/data", "/data", True), BindMount("/tmp/x", "/x")],
        etc_files={"/etc/hosts": "/c/hosts", "/etc/resolv.conf": "/c/resolv.conf"},
        nofile=(1024, 20000),
    )
    json.dumps(out)  # JSON-ready
    assert out["ociVersion"] == "1.0.2"
    assert out["root"] == {"path": "rootfs", "readonly": False}
    assert out["hostname"] == "box"
    process = out["process"]
    assert process["args"] == ["/bin/sh", "-c", "echo hi"]
    assert process["cwd"] == "/srv"
    assert process["terminal"] is False
    assert process["user"] == {"uid": 10000, "gid": 10000, "additionalGids": [10]}
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 20000}]
    for kind in ("bounding", "effective", "permitted"):
        assert process["capabilities"][kind] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES
    assert len(DEFAULT_CAPABILITIES) == 14
    linux = out["linux"]
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "network"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert {d["path"] for d in linux["devices"]} == {
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    }
    rules = linux["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 136, "access": "rwm"} in rules
    mounts = {m["destination"]: m for m in out["mounts"]}
    for needed in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert needed in mounts
    assert "ro" in mounts["/sys"]["options"]
    assert mounts["/etc/hosts"] == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/c/hosts",
        "options": ["rbind", "rprivate"],
    }
    assert mounts["/data"]["options"] == ["rbind", "rprivate", "ro"]
    assert mounts["/x"]["options"] == ["rbind", "rprivate"]
    destinations = [m["destination"] for m in out["mounts"]]
    assert destinations.index("/dev") < destinations.index("/dev/pts")


def test_host_network_and_terminal() -> None:
    out = config(network="host", tty=True)
    assert "network" not in [n["type"] for n in out["linux"]["namespaces"]]
    assert out["process"]["terminal"] is True


@pytest.mark.parametrize(
    ("changes", "problem"),
    [({"network": "bridge"}, "unknown network"), ({"cwd": "srv"}, "must be absolute")],
)
def test_bad_config_input(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        config(**changes)


def test_every_mount_names_its_place() -> None:
    # the output is what runc reads: every mount has destination/type/source
    for mount in config()["mounts"]:
        assert set(mount) >= {"destination", "type", "source"}
