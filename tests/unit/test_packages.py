"""The connector jars every job starts from: resolved once by `make setup`, checked at submit."""

from __future__ import annotations

from pathlib import Path

import pytest

from clickstream_spark.packages import JARS_STAMP, main, package_set, resolved_jars


def jars_folder(tmp_path: Path, stamp: str | None) -> Path:
    folder = tmp_path / "spark-jars"
    folder.mkdir()
    for name in ("b_connector-2.jar", "a_driver-1.jar"):
        (folder / name).write_bytes(b"PK")
    if stamp is not None:
        (folder / JARS_STAMP).write_text(stamp + "\n")
    return folder


def test_the_jars_of_the_current_package_set_are_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = jars_folder(tmp_path, package_set())
    assert resolved_jars(folder) == [folder / "a_driver-1.jar", folder / "b_connector-2.jar"]
    assert main(["jars", str(folder)]) == 0
    assert capsys.readouterr().out == f"{folder}/a_driver-1.jar,{folder}/b_connector-2.jar\n"


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (None, "no resolved Spark jars in .*: run 'make setup'"),
        ("org.x:y:1.0 ", "resolved for other versions: run 'make setup'"),
    ],
)
def test_missing_or_stale_jars_ask_for_make_setup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp: str | None, message: str
) -> None:
    folder = jars_folder(tmp_path, stamp)
    with pytest.raises(FileNotFoundError, match=message):
        resolved_jars(folder)
    assert main(["jars", str(folder)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("spark-submit.sh: error: ") and error.count("\n") == 1


def test_the_package_set_names_the_three_connectors() -> None:
    packages, excludes = package_set().split(" ")
    assert [p.split(":")[1] for p in packages.split(",")] == [
        "spark-sql-kafka-0-10_2.12",
        "spark-cassandra-connector_2.12",
        "elasticsearch-spark-30_2.12",
    ]
    assert "org.elasticsearch:elasticsearch-hadoop-mr" in excludes.split(",")
