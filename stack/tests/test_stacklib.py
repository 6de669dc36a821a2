"""Unit tests of stackctl's pure parts (no server, no network): ``pytest stack/tests``."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

import pytest

from stacklib import StackError
from stacklib.console import log_tail
from stacklib.fetch import _unzip_stripping_top_folder
from stacklib.layout import Layout, read_versions, render_template
from stacklib.procs import Process, pid_from_file, port_holder, port_is_free, wait_for
from stacklib.servers import Elasticsearch, Kafka, _kafka_cluster_id, make_servers

# --- templates and versions ---------------------------------------------------------------------


def test_render_template_replaces_tokens(tmp_path: Path) -> None:
    template = tmp_path / "in.properties"
    template.write_text("port=@PORT@\ndir=@DATA_DIR@\nmail=a@b.c\n")
    render_template(template, tmp_path / "out" / "x.properties", {"PORT": 9092, "DATA_DIR": "/d"})
    assert (tmp_path / "out" / "x.properties").read_text() == "port=9092\ndir=/d\nmail=a@b.c\n"


def test_render_template_refuses_unknown_tokens(tmp_path: Path) -> None:
    template = tmp_path / "in.yml"
    template.write_text("a: @PORT@\nb: @TYPO@\n")
    with pytest.raises(StackError, match="@TYPO@"):
        render_template(template, tmp_path / "out.yml", {"PORT": 1})


def test_read_versions_names_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "versions.env").write_text("# c\nJAVA_MAJOR=17\nKAFKA_VERSION='4.4.0'\n")
    with pytest.raises(StackError, match="CASSANDRA_VERSION, ELASTICSEARCH_VERSION"):
        read_versions(Layout(tmp_path))


def test_read_versions_of_the_project() -> None:
    versions = read_versions(Layout())
    assert versions["JAVA_MAJOR"].isdigit()


# --- servers ------------------------------------------------------------------------------------


def test_server_owns_only_processes_of_this_checkout(tmp_path: Path) -> None:
    kafka = Kafka(Layout(tmp_path))
    dist = tmp_path / ".state" / "dist"
    mine = Process(1, 1, "S", f"java -cp {dist}/kafka/lib/* kafka.Kafka x")
    other_checkout = Process(2, 2, "S", "java -cp /elsewhere/.state/dist/kafka/lib/* kafka.Kafka")
    other_server = Process(3, 3, "S", f"java -cp {dist}/kafka-ui/lib/* x")
    assert kafka.owns(mine)
    assert not kafka.owns(other_checkout)
    assert not kafka.owns(other_server)
    es = Elasticsearch(Layout(tmp_path))
    assert es.owns(Process(4, 4, "S", f"java -Des.path.home={dist}/elasticsearch -cp x"))


def test_make_servers_keeps_the_stack_order() -> None:
    names = [s.name for s in make_servers(["elasticsearch", "kafka"], Layout())]
    assert names == ["kafka", "elasticsearch"]
    assert [s.name for s in make_servers([], Layout())] == ["kafka", "cassandra", "elasticsearch"]


def test_kafka_cluster_id_is_22_url_safe_characters() -> None:
    for _ in range(100):
        cluster_id = _kafka_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


# --- ports --------------------------------------------------------------------------------------


def test_a_listening_port_is_taken_and_its_holder_is_this_process() -> None:
    import os

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free(port)
        holder = port_holder(port)
        assert holder is not None and holder.pid == os.getpid()
    assert port_is_free(port)


# --- processes and logs ------------------------------------------------------------------------


def test_pid_from_file_trusts_only_a_live_owned_process_and_drops_a_stale_file(
    tmp_path: Path,
) -> None:
    import os

    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert pid_from_file(pid_file, lambda process: process.pid == os.getpid()) == os.getpid()
    assert pid_file.exists()
    assert pid_from_file(pid_file, lambda _process: False) is None  # alive, but not ours
    assert not pid_file.exists()
    assert pid_from_file(pid_file, lambda _process: True) is None  # no file


@pytest.mark.parametrize(("running", "raised"), [(False, "exited"), (True, "timed out")])
def test_wait_for_names_the_exit_before_the_timeout(running: bool, raised: str) -> None:
    with pytest.raises(StackError, match=raised):
        wait_for(
            lambda: False,
            lambda: running,
            timeout_s=0,
            exited=lambda: StackError("exited"),
            timed_out=lambda: StackError("timed out"),
        )


def test_wait_for_returns_once_ready() -> None:
    wait_for(lambda: True, lambda: False, 0, lambda: StackError("x"), lambda: StackError("y"))


def test_log_tail_reads_from_the_offset_and_gives_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("old\n=== start ===\none\ntwo\nthree\n")
    since = len("old\n")
    assert log_tail(log, 2, since=since) == ["two", "three"]
    assert log_tail(log, 10, since=since) == ["=== start ===", "one", "two", "three"]
    assert log_tail(log, 0) == []
    assert log_tail(tmp_path / "missing.log", 5) == []


# --- archives -----------------------------------------------------------------------------------


def test_unzip_strips_the_top_folder_and_keeps_modes(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        script = zipfile.ZipInfo("top-1.0/bin/run")
        script.external_attr = 0o100755 << 16
        zipped.writestr(script, "#!/bin/sh\n")
        zipped.writestr("top-1.0/lib/a.jar", "jar")
    target = tmp_path / "out"
    target.mkdir()
    _unzip_stripping_top_folder(archive, target)
    assert (target / "lib" / "a.jar").read_text() == "jar"
    assert (target / "bin" / "run").stat().st_mode & 0o777 == 0o755


def test_unzip_refuses_entries_that_leave_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("top/../../escape.txt", "x")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(StackError, match="leaves the folder"):
        _unzip_stripping_top_folder(archive, target)
