"""Hostile input and hostile disks on the CRDS-cache side (issue 13), and the cache CLI's
conventions (issue 14): reused serials, rolled-back inits, symlinked folders, full and
read-only disks, edited server_configs, undecodable mappings, FIFOs, symlinked locks,
non-ASCII names, impossible dates, deleted references, leftover temporary files,
unknown instruments and detectors, ``--json`` and ``--crds-path``.

Every file here is real (``tmp_path``); full and read-only disks are real file systems
(a tmpfs in a user namespace, ``/dev/full``) or real permissions, never mocks.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits
from support import sub_ramp, user_namespace_with_tmpfs_works
from typer.testing import CliRunner

from dqref.atomic import temporary_sibling
from dqref.cache import crds_adapter, filesystem
from dqref.cache.cli import app
from dqref.cache.errors import (
    CacheError,
    CacheLockError,
    CacheWriteError,
    NotARegularFileError,
    OutsideCacheError,
)
from dqref.cache.local_cache import BestRef, LocalCache
from dqref.errors import UnknownDetectorError

runner = CliRunner()
BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cache.md"
SUB64 = ("SUB64", 1, 1, 64)
RMAP = "ligeriri_iris_dq_0001.rmap"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")


def observation(date="2026-01-01", subarray="SUB64", detector="IRIS1") -> dict:
    return {"INSTRUME": "IRIS", "DETECTOR": detector, "SUBARRAY": subarray,
            "DATE-OBS": date, "TIME-OBS": "00:00:00"}


def params(header: dict) -> list[str]:
    return [item for key, value in header.items() for item in ("--param", f"{key}={value}")]


@pytest.fixture
def small_reference(make_reference, tmp_path):
    """``small_reference(name, useafter, pixel)``: a valid 64 x 64 SUB64 reference."""
    def make(name: str, useafter: str = "2020-01-01", pixel=(1, 1), folder=None) -> Path:
        return make_reference((folder or tmp_path) / name, "IRIS1", useafter, [pixel],
                              subarray=SUB64, description="a small test reference")
    return make


@pytest.fixture
def two_added(tmp_path, small_reference):
    """A cache with A (2020, iris_dq_0001) and B (2021, iris_dq_0002); context 0003."""
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    cache.add(small_reference("a.fits", "2020-01-01", (1, 1)))
    cache.add(small_reference("b.fits", "2021-01-01", (2, 2)))
    return cache


def assert_one_line_error(result, *words, code=2):
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqref: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "dqref.lock"}


def write_server_config(cache: LocalCache, text: str) -> None:
    (cache.config_dir / "server_config").write_text(text)


# -- 4. serials are never reused -------------------------------------------------------------
def test_a_deleted_reference_serial_is_never_reused(two_added, small_reference):
    two_added.reference_path("iris_dq_0002.fits").unlink()
    result = two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert result.reference.name == "iris_dq_0003.fits"
    older = two_added.bestref(observation("2021-06-01"), context="ligeriri_0003.pmap")
    assert older.reference == "iris_dq_0002.fits"
    assert not older.path.exists()


def test_a_deleted_rmap_serial_is_never_reused(two_added, small_reference):
    two_added.use_context("ligeriri_0002.pmap")
    (two_added.mapping_dir / "ligeriri_iris_dq_0002.rmap").unlink()  # named by imap 0003
    result = two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert (result.rmap, result.imap, result.context) == (
        "ligeriri_iris_dq_0003.rmap", "ligeriri_iris_0004.imap", "ligeriri_0004.pmap")


def test_a_temporary_file_of_a_killed_add_reserves_its_serial(two_added, small_reference):
    target = two_added.reference_dir("iris") / "iris_dq_0003.fits"
    temporary_sibling(target).write_bytes(b"half a reference")
    result = two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert result.reference.name == "iris_dq_0004.fits"


# -- 5. init never rolls back --------------------------------------------------------------
def test_init_with_a_missing_server_config_recovers_the_newest_context(two_added):
    rules = two_added.rules()
    (two_added.config_dir / "server_config").unlink()
    assert LocalCache(two_added.root).init() == "ligeriri_0003.pmap"
    fresh = LocalCache(two_added.root)
    assert fresh.current_context == "ligeriri_0003.pmap"
    assert fresh.rules() == rules


def test_init_with_an_unreadable_server_config_recovers_the_newest_context(two_added):
    write_server_config(two_added, "{'operational_context':")
    result = LocalCache(two_added.root).initialise()
    assert (result.context, result.action) == ("ligeriri_0003.pmap", "recovered")
    assert "server_config was unusable" in result.message
    assert LocalCache(two_added.root).current_context == "ligeriri_0003.pmap"


def test_init_recovery_skips_a_newest_context_that_does_not_load(two_added):
    (two_added.config_dir / "server_config").unlink()
    with open(two_added.mapping_dir / "ligeriri_0003.pmap", "a") as handle:
        handle.write("# tampered\n")
    result = LocalCache(two_added.root).initialise()
    assert result.context == "ligeriri_0002.pmap"
    assert "ligeriri_0003.pmap does not load" in result.message


def test_init_refuses_a_folder_whose_mappings_hold_no_loadable_context(two_added):
    (two_added.config_dir / "server_config").unlink()
    for pmap in two_added.mapping_dir.glob("*.pmap"):
        pmap.write_text(pmap.read_text() + "# tampered\n")
    before = files_under(two_added.root)
    with pytest.raises(CacheError, match=r"holds 9 mappings \(3 pmaps\) but no pmap crds can "
                                         r"load; refusing to initialise over them"):
        LocalCache(two_added.root).init()
    assert files_under(two_added.root) == before


def test_init_completes_an_interrupted_first_init(tmp_path):
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    (cache.config_dir / "server_config").unlink()
    (cache.mapping_dir / "ligeriri_0001.pmap").unlink()
    assert LocalCache(cache.root).initialise().action == "created"
    assert LocalCache(cache.root).current_context == "ligeriri_0001.pmap"


def test_cli_init_says_what_it_recovered(two_added):
    (two_added.config_dir / "server_config").unlink()
    result = runner.invoke(app, ["init", "--crds-path", str(two_added.root)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{two_added.config_dir / 'server_config'} was missing; recovered the newest "
        f"loadable context ligeriri_0003.pmap (of 3 pmaps in {two_added.mapping_dir})\n"
        f"{two_added.root}: current context ligeriri_0003.pmap\n")


# -- 6. nothing is written outside the cache -------------------------------------------------
def move_outside(folder: Path, outside: Path) -> None:
    shutil.move(folder, outside)
    folder.symlink_to(outside, target_is_directory=True)


def test_add_refuses_a_mapping_folder_linked_outside_the_cache(two_added, small_reference,
                                                             tmp_path):
    outside = tmp_path / "elsewhere"
    move_outside(two_added.mapping_dir, outside)
    before_outside, before = files_under(outside), files_under(two_added.root)
    with pytest.raises(OutsideCacheError, match=re.escape(
            f"{two_added.mapping_dir} resolves to {outside}, outside the cache "
            f"{two_added.root}; refusing to write there")):
        two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert files_under(outside) == before_outside
    assert files_under(two_added.root) == before


def test_add_refuses_a_config_folder_linked_outside_the_cache(two_added, small_reference,
                                                            tmp_path):
    outside = tmp_path / "elsewhere"
    move_outside(two_added.config_dir, outside)
    (outside / "dqref.lock").unlink()
    before_outside, before = files_under(outside), files_under(two_added.root)
    with pytest.raises(OutsideCacheError, match="outside the cache"):
        two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert sorted(p.name for p in outside.iterdir()) == ["ref_cache_subdir_mode",
                                                         "server_config"]
    assert files_under(outside) == before_outside
    assert files_under(two_added.root) == before


def test_add_refuses_a_reference_folder_linked_outside_the_cache(two_added, small_reference,
                                                               tmp_path):
    outside = tmp_path / "elsewhere"
    move_outside(two_added.root / "references", outside)
    before = files_under(outside)
    with pytest.raises(OutsideCacheError, match="outside the cache"):
        two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert files_under(outside) == before


def test_a_reference_folder_linked_elsewhere_is_read_but_never_written(two_added,
                                                                    small_reference, tmp_path):
    outside = tmp_path / "big_disk"
    move_outside(two_added.root / "references", outside)
    answer = LocalCache(two_added.root).bestref(observation())
    assert (answer.reference, answer.exists) == ("iris_dq_0002.fits", True)
    with pytest.raises(OutsideCacheError, match="refusing to write there"):
        LocalCache(two_added.root).add(small_reference("c.fits", "2022-01-01", (3, 3)))


def test_init_refuses_a_mapping_folder_linked_outside_the_cache(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "cache" / "mappings").mkdir(parents=True)
    (tmp_path / "cache" / "mappings" / "ligeriri").symlink_to(outside)
    result = runner.invoke(app, ["init", "--crds-path", str(tmp_path / "cache")])
    assert_one_line_error(result, "mappings/ligeriri resolves to", "outside the cache")
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "cache" / "config").exists()


def test_adopt_repair_refuses_a_destination_folder_linked_outside(two_added, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "dest" / "mappings").mkdir(parents=True)
    (tmp_path / "dest" / "mappings" / "ligeriri").symlink_to(outside)
    result = runner.invoke(app, ["adopt", str(two_added.root), "--crds-path",
                                 str(tmp_path / "dest"), "--repair"])
    assert_one_line_error(result, "mappings/ligeriri resolves to", "outside the cache")
    assert list(outside.iterdir()) == []


def test_clean_refuses_a_folder_linked_outside_the_cache(two_added, tmp_path):
    outside = tmp_path / "elsewhere"
    move_outside(two_added.mapping_dir, outside)
    leftover = temporary_sibling(outside / "ligeriri_0004.pmap")
    leftover.write_text("half a pmap")
    with pytest.raises(OutsideCacheError, match="outside the cache"):
        LocalCache(two_added.root).clean()
    assert leftover.is_file()


# -- 12. full and read-only disks --------------------------------------------------------------
def test_a_write_error_names_the_path_it_could_not_write():
    device = Path("/dev/full")
    if not device.exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(CacheWriteError) as caught, filesystem.writing(device):
        with open(device, "wb") as handle:
            handle.write(b"a reference")
    assert str(caught.value) == "cannot write /dev/full: No space left on device"
    assert caught.value.__cause__.errno == errno.ENOSPC


def test_a_write_error_keeps_dqref_errors_as_they_are(tmp_path):
    with pytest.raises(CacheError, match="^already there$"), filesystem.writing(tmp_path):
        raise CacheError("already there")


needs_tmpfs = pytest.mark.skipif(not user_namespace_with_tmpfs_works(),
                                 reason="no user namespaces for a private tmpfs")


def in_a_small_tmpfs(mount: Path, script: str, size="1m") -> subprocess.CompletedProcess:
    """Run ``script`` (sh) with a fresh tmpfs of ``size`` mounted at ``mount``."""
    mount.mkdir()
    setup = f"mount -t tmpfs -o size={size} none '{mount}' && cd '{mount}' && "
    return subprocess.run(["unshare", "-rm", "sh", "-c", setup + script],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})


@needs_tmpfs
def test_add_on_a_full_disk_is_one_line_naming_the_path_and_the_cache_stays(tmp_path,
                                                                         three_references):
    full_frame = three_references[0]  # 64 MB, on a 1 MB disk
    done = in_a_small_tmpfs(tmp_path / "disk", (
        "dqref cache init --path cache >/dev/null && "
        f"{{ dqref cache add '{full_frame}' --path cache --no-roundtrip; echo rc=$?; }} && "
        "dqref cache verify --path cache && ls -A cache/references/ligeriri/iris"))
    lines = done.stderr.splitlines()
    target = tmp_path / "disk/cache/references/ligeriri/iris/iris_dq_0001.fits"
    assert lines == [f"dqref: error: cannot write {target}: No space left on device"], \
        done.stderr
    assert done.stdout.splitlines() == [
        "rc=2", f"{tmp_path / 'disk/cache'}: OK (context ligeriri_0001.pmap)"]


@needs_tmpfs
def test_add_and_init_on_a_read_only_file_system(tmp_path, small_reference):
    first = small_reference("a.fits", "2020-01-01", (1, 1))
    second = small_reference("b.fits", "2021-01-01", (2, 2))
    done = in_a_small_tmpfs(tmp_path / "disk", (
        "dqref cache init --path cache >/dev/null && "
        f"dqref cache add '{first}' --path cache --no-roundtrip >/dev/null && "
        f"mount -o remount,ro '{tmp_path / 'disk'}' && "
        f"{{ dqref cache add '{second}' --path cache --no-roundtrip; echo add=$?; }} && "
        "{ dqref cache init --path cache; echo init=$?; } && "
        "dqref cache verify --path cache"), size="4m")
    cache = tmp_path / "disk/cache"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqref: error: "), done.stderr
    assert str(cache) in lines[0] and "Read-only file system" in lines[0]
    assert done.stdout.splitlines() == [
        "add=2", f"{cache}: current context ligeriri_0002.pmap", "init=0",
        f"{cache}: OK (context ligeriri_0002.pmap)"]


@needs_permissions
def test_add_to_a_read_only_cache_is_one_line_naming_the_path(two_added, small_reference):
    reference = small_reference("c.fits", "2022-01-01", (3, 3))
    for folder in (two_added.reference_dir("iris"), two_added.mapping_dir):
        folder.chmod(0o555)
    try:
        result = runner.invoke(app, ["add", str(reference), "--crds-path", str(two_added.root),
                                     "--no-roundtrip"])
    finally:
        for folder in (two_added.reference_dir("iris"), two_added.mapping_dir):
            folder.chmod(0o755)
    assert_one_line_error(result, f"cannot write {two_added.reference_dir('iris')}",
                          "Permission denied")
    assert LocalCache(two_added.root).current_context == "ligeriri_0003.pmap"


@needs_permissions
def test_init_in_a_read_only_folder_is_one_line_naming_the_path(tmp_path):
    tmp_path.joinpath("locked").mkdir(mode=0o555)
    result = runner.invoke(app, ["init", "--crds-path", str(tmp_path / "locked" / "cache")])
    assert_one_line_error(result, f"cannot write {tmp_path / 'locked' / 'cache'}",
                          "Permission denied")


# -- 20. init of an initialised read-only cache does nothing -----------------------------------
@needs_permissions
def test_init_of_an_initialised_read_only_cache_does_nothing_and_exits_0(two_added):
    everything = [two_added.root, *two_added.root.rglob("*")]
    for path in everything:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = runner.invoke(app, ["init", "--crds-path", str(two_added.root)])
    finally:
        for path in everything:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{two_added.root}: current context ligeriri_0003.pmap\n"


def test_init_of_an_initialised_cache_writes_nothing_not_even_the_lock(two_added):
    (two_added.config_dir / "dqref.lock").unlink()
    LocalCache(two_added.root).init()
    assert not (two_added.config_dir / "dqref.lock").exists()


# -- 13. server_config values that are not what they claim -------------------------------------
@pytest.mark.parametrize("text", ["[1, 2]\n", "'a string'\n", "42\n"])
@pytest.mark.parametrize("command", [["list"], ["bestref", "--param", "INSTRUME=IRIS"],
                                     ["add", "REFERENCE", "--no-roundtrip"]])
def test_a_server_config_that_is_not_a_dict_is_one_line_naming_the_file(two_added,
                                                                       small_reference,
                                                                       text, command):
    write_server_config(two_added, text)
    reference = str(small_reference("c.fits", "2022-01-01", (3, 3)))
    command = [reference if word == "REFERENCE" else word for word in command]
    result = runner.invoke(app, [*command, "--crds-path", str(two_added.root)])
    assert_one_line_error(result, f"{two_added.config_dir / 'server_config'}: corrupted "
                                  "(not a dict)")


@pytest.mark.parametrize("named", ["ligeriri_iris_0003.imap", "ligeriri_iris_dq_0002.rmap"])
def test_an_operational_context_that_is_not_a_pmap_is_refused_by_add(two_added,
                                                                     small_reference, named):
    write_server_config(two_added, crds_adapter.server_config_text(named, [], "test"))
    before = files_under(two_added.root)
    with pytest.raises(CacheError, match=re.escape(
            f"{two_added.config_dir / 'server_config'}: operational_context {named!r} is "
            "not a .pmap")):
        two_added.add(small_reference("c.fits", "2022-01-01", (3, 3)))
    assert files_under(two_added.root) == before


def test_an_operational_context_naming_an_imap_is_one_line_for_list_and_bestref(two_added):
    named = "ligeriri_iris_0003.imap"
    write_server_config(two_added, crds_adapter.server_config_text(named, [], "test"))
    for command in (["list"], ["bestref", *params(observation())]):
        result = runner.invoke(app, [*command, "--crds-path", str(two_added.root)])
        assert_one_line_error(result, f"operational_context {named!r} is not a .pmap")
        assert result.stdout == ""


def test_verify_reports_an_operational_context_that_is_not_a_pmap(two_added):
    named = "ligeriri_iris_0003.imap"
    write_server_config(two_added, crds_adapter.server_config_text(named, [], "test"))
    result = runner.invoke(app, ["verify", "--crds-path", str(two_added.root)])
    assert result.exit_code == 1
    assert f"operational_context {named!r} is not a .pmap" in result.stdout
    assert "OK" not in result.stdout


def test_a_context_option_that_is_not_a_pmap_is_refused(two_added):
    with pytest.raises(CacheError, match="context 'ligeriri_iris_0003.imap' is not a .pmap"):
        two_added.bestref(observation(), context="ligeriri_iris_0003.imap")
    with pytest.raises(CacheError, match=r"context '../ligeriri_0003.pmap' is not a .pmap"):
        two_added.rules(context="../ligeriri_0003.pmap")


# -- 14. mappings that are not UTF-8 --------------------------------------------------------
@pytest.fixture
def undecodable_rmap(two_added):
    """The cache with a byte that is not UTF-8 appended to its current dq rmap."""
    path = two_added.mapping_dir / "ligeriri_iris_dq_0002.rmap"
    with open(path, "ab") as handle:
        handle.write(b"# \xff\xfe\n")
    return two_added, path


def test_a_non_utf8_rmap_is_one_line_naming_it(undecodable_rmap, small_reference):
    cache, path = undecodable_rmap
    reference = str(small_reference("c.fits", "2022-01-01", (3, 3)))
    for command in (["list"], ["bestref", *params(observation())],
                    ["add", reference, "--no-roundtrip"]):
        result = runner.invoke(app, [*command, "--crds-path", str(cache.root)])
        assert_one_line_error(result, f"{path}: not UTF-8 text")


def test_verify_reports_a_non_utf8_rmap(undecodable_rmap):
    cache, path = undecodable_rmap
    problems = LocalCache(cache.root).verify()
    assert f"{path}: not UTF-8 text (invalid start byte at byte {path.stat().st_size - 3})" \
        in problems
    assert any(p.startswith("cannot load context ligeriri_0003.pmap") for p in problems)


def test_dqinit_on_a_cache_with_a_non_utf8_rmap_names_the_file(undecodable_rmap, tmp_path):
    from dqinit.step import DQInitStep

    cache, path = undecodable_rmap
    ramp = sub_ramp(tmp_path / "ramp.fits", origin_xy=(1, 1))
    with pytest.raises(CacheError, match=re.escape(f"{path}: not UTF-8 text")):
        DQInitStep(crds_path=cache.root).run(ramp, output=tmp_path / "out.fits")
    assert not (tmp_path / "out.fits").exists()


# -- 15. datasets that are not regular files ----------------------------------------------------
def bestref_process(cache: Path, dataset: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dqref"), "cache", "bestref", str(dataset), "--path",
                           str(cache)], capture_output=True, text=True, timeout=60)


def test_bestref_refuses_a_fifo_dataset(two_added, tmp_path):
    fifo = tmp_path / "science.fits"
    os.mkfifo(fifo)
    done = bestref_process(two_added.root, fifo)  # blocked forever before
    assert (done.returncode, done.stderr) == (
        2, f"dqref: error: {fifo}: not a regular file (a FIFO)\n")


def test_bestref_refuses_a_character_device_dataset(two_added):
    done = bestref_process(two_added.root, Path("/dev/zero"))
    assert (done.returncode, done.stderr) == (
        2, "dqref: error: /dev/zero: not a regular file (a character device)\n")


def test_regular_file_accepts_a_link_to_a_regular_file(tmp_path):
    (tmp_path / "real.fits").write_bytes(b"")
    (tmp_path / "link.fits").symlink_to(tmp_path / "real.fits")
    assert filesystem.regular_file(tmp_path / "link.fits") == tmp_path / "link.fits"
    with pytest.raises(NotARegularFileError, match="not a regular file \\(a directory\\)"):
        filesystem.regular_file(tmp_path)


def test_add_refuses_a_fifo_reference(two_added, tmp_path):
    fifo = tmp_path / "reference.fits"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="not a regular file \\(a FIFO\\)"):
        two_added.add(fifo)


# -- 16. a lock replaced by a symbolic link --------------------------------------------------
@pytest.mark.parametrize("target", ["dqref.lock", "../../../elsewhere.lock"])
def test_a_lock_file_replaced_by_a_symlink_is_one_line_naming_it(two_added, small_reference,
                                                                 tmp_path, target):
    lock = two_added.config_dir / "dqref.lock"
    lock.unlink()
    lock.symlink_to(target)
    result = runner.invoke(app, ["add", str(small_reference("c.fits", "2022-01-01", (3, 3))),
                                 "--crds-path", str(two_added.root), "--no-roundtrip"])
    assert_one_line_error(result, f"{lock}: the cache lock is a symbolic link")
    assert not (tmp_path / "elsewhere.lock").exists()
    assert LocalCache(two_added.root).current_context == "ligeriri_0003.pmap"


# -- 17. non-ASCII file names ---------------------------------------------------------------
def test_a_user_override_with_a_non_ascii_name_records_an_ascii_keyword_value():
    answer = BestRef.user_override("/data/réf_日本.fits")
    assert answer.reference == "réf_日本.fits"
    assert answer.keyword_value == "user:r\\xe9f_\\u65e5\\u672c.fits"
    assert BestRef.user_override("mine.fits").keyword_value == "user:mine.fits"


def test_cli_add_of_a_non_ascii_file_name_works(tmp_path, small_reference):
    reference = small_reference("réf_日本.fits")
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    result = runner.invoke(app, ["add", str(reference), "--crds-path", str(cache.root)])
    assert result.exit_code == 0, result.output
    assert f"{reference} -> {cache.reference_path('iris_dq_0001.fits')}" in result.stdout


def test_dqinit_with_a_non_ascii_override_records_an_ascii_r_dq(tmp_path, make_reference):
    from dqinit.step import DQInitStep

    reference = make_reference(tmp_path / "réf_ü.fits", "IRIS1", "2020-01-01", [(1, 1)],
                               subarray=SUB64, description="a small test reference")
    ramp = sub_ramp(tmp_path / "ramp.fits", origin_xy=(1, 1))
    result = DQInitStep(override_dq=reference).run(ramp, output=tmp_path / "out.fits")
    assert result.status == "COMPLETE"
    assert fits.getheader(tmp_path / "out.fits")["R_DQ"] == "user:r\\xe9f_\\xfc.fits"


# -- 18. verify reports what crds certify reports --------------------------------------------
def test_verify_reports_what_crds_certify_reports_for_an_impossible_useafter(two_added):
    path = two_added.mapping_dir / RMAP
    text = path.read_text().replace("2020-01-01 00:00:00", "2020-99-99 99:99:99")
    path.write_text(crds_adapter.with_checksum(text, RMAP))
    problems = LocalCache(two_added.root).verify()
    assert problems == [
        f"{path}: crds certify: UseAfter('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME') : "
        "'2020-99-99 99:99:99' : UseAfter Invalid date/time format for "
        "('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME') value = '2020-99-99 99:99:99' "
        "exception is 'month must be in 1..12'"]


def test_certify_of_a_healthy_mapping_finds_nothing(two_added):
    paths = sorted(two_added.mapping_dir.glob("*.?map"))
    found = crds_adapter.certify_mappings(two_added.root, paths, "ligeriri_0003.pmap")
    assert found == {path: [] for path in paths}


# -- 19. a reference that was deleted ----------------------------------------------------------
def test_cli_bestref_of_a_deleted_reference_says_it_is_missing_and_exits_1(two_added):
    missing = two_added.reference_path("iris_dq_0002.fits")
    missing.unlink()
    result = runner.invoke(app, ["bestref", *params(observation()), "--crds-path",
                                 str(two_added.root)])
    assert_one_line_error(result, f"context ligeriri_0003.pmap selects iris_dq_0002.fits but "
                                  f"{missing} does not exist", code=1)
    assert result.stdout == ""


# -- 21. temporary files left behind ------------------------------------------------------------
@pytest.fixture
def leftovers(two_added):
    """Temporary files as a killed add leaves them: a reference, an rmap, a server_config."""
    made = [temporary_sibling(two_added.reference_dir("iris") / "iris_dq_0003.fits"),
            temporary_sibling(two_added.mapping_dir / "ligeriri_iris_dq_0003.rmap"),
            temporary_sibling(two_added.config_dir / "server_config")]
    for number, path in enumerate(made):
        path.write_bytes(b"x" * (number + 1))
    return two_added, made


def test_verify_lists_leftover_temporary_files_as_warnings(leftovers):
    cache, made = leftovers
    report = LocalCache(cache.root).verify_report()
    assert report.problems == []
    assert report.warnings == [
        f"{path}: temporary file left by an interrupted write ({size} bytes); "
        "'dqref cache clean' removes it"
        for path, size in sorted(zip(made, (1, 2, 3), strict=True))]


def test_cli_verify_prints_the_warnings_and_exits_0(leftovers):
    cache, made = leftovers
    result = runner.invoke(app, ["verify", "--crds-path", str(cache.root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{cache.root}: OK (context ligeriri_0003.pmap)"
    assert sum(line.startswith("warning: ") for line in result.stdout.splitlines()) == 3


def test_clean_removes_only_our_temporary_files(leftovers, snapshot_cache):
    cache, made = leftovers
    strangers = [cache.mapping_dir / ".notes.txt", cache.mapping_dir / ".x.pmap.tmp",
                 cache.reference_dir("iris") / ".iris_dq_0009.fits.ABCDEF012345.tmp"]
    for path in strangers:
        path.write_text("not ours")
    removed = LocalCache(cache.root).clean()
    assert [(r.path, r.size) for r in removed] == sorted(zip(made, (1, 2, 3), strict=True))
    assert not any(path.exists() for path in made)
    assert all(path.exists() for path in strangers)
    assert LocalCache(cache.root).verify_report().warnings == []


def test_clean_never_removes_a_published_file(two_added):
    published = two_added.mapping_dir / "ligeriri_0003.pmap"
    linked = temporary_sibling(published)
    os.link(published, linked)  # killed between link and unlink
    before = published.read_bytes()
    assert [r.path for r in LocalCache(two_added.root).clean()] == [linked]
    assert published.read_bytes() == before
    assert LocalCache(two_added.root).verify() == []


def test_clean_skips_links_and_folders_named_like_temporary_files(two_added, tmp_path):
    victim = tmp_path / "victim.fits"
    victim.write_text("keep me")
    link = temporary_sibling(two_added.reference_dir("iris") / "iris_dq_0003.fits")
    link.symlink_to(victim)
    temporary_sibling(two_added.mapping_dir / "ligeriri_0004.pmap").mkdir()
    assert LocalCache(two_added.root).clean() == []
    assert victim.read_text() == "keep me" and link.is_symlink()


HOLD_LOCK = """
import sys, time
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_clean_refuses_while_another_process_holds_the_cache_lock(leftovers):
    cache, made = leftovers
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK,
                               str(cache.config_dir / "dqref.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(CacheLockError, match="another dqref process holds the cache lock"):
            LocalCache(cache.root).clean()
    finally:
        holder.kill()
        holder.wait()
    assert all(path.exists() for path in made)


def test_cli_clean_prints_what_it_removed(leftovers):
    cache, made = leftovers
    result = runner.invoke(app, ["clean", "--crds-path", str(cache.root)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *(f"removed {path} ({size} bytes)" for path, size in
          sorted(zip(made, (1, 2, 3), strict=True))),
        f"{cache.root}: 3 temporary files removed"]


# -- unknown instruments and detectors, exit codes ------------------------------------------
def test_cli_bestref_of_an_unknown_instrument_names_the_known_ones(two_added):
    result = runner.invoke(app, ["bestref", "--param", "INSTRUME=NIRCAM", "--crds-path",
                                 str(two_added.root)])
    assert_one_line_error(result, "unknown instrument 'NIRCAM'", "IRIS, LIGER")


def test_bestref_of_an_unknown_instrument_is_an_error_in_the_library_too(two_added):
    with pytest.raises(UnknownDetectorError, match="unknown instrument 'NIRCAM'"):
        two_added.bestref({"INSTRUME": "NIRCAM", "DETECTOR": "NRCA1"})


def test_bestref_without_an_instrument_says_which_keyword_is_missing(two_added):
    with pytest.raises(UnknownDetectorError, match="names no instrument"):
        two_added.bestref({"DETECTOR": "IMG1"})


def test_cli_bestref_of_an_unknown_detector_names_the_known_ones(two_added):
    result = runner.invoke(app, ["bestref", *params(observation(detector="IRIS9")),
                                 "--crds-path", str(two_added.root)])
    assert_one_line_error(result, "unknown detector 'IRIS9' for IRIS", "IMG1", "IRIS1")


def test_a_dataset_from_an_unknown_detector_is_not_found_for_the_pipeline(two_added):
    answer = two_added.bestref(observation(detector="IRIS9"))
    assert not answer.found  # dqinit then SKIPs such a ramp; the CLI refuses the typo


def test_cli_bestref_without_a_match_exits_1(two_added):
    result = runner.invoke(app, ["bestref", *params(observation("2019-01-01")),
                                 "--crds-path", str(two_added.root)])
    assert result.exit_code == 1
    assert result.stdout == "N/A (No match found.)\n"


# -- --json ------------------------------------------------------------------------------------
def documented_json(command: str) -> dict:
    """The example document docs/cache.md shows for ``dqref cache COMMAND --json``."""
    text = DOCS.read_text()
    found = re.search(rf"`dqref cache {command} --json`.*?```json\n(.*?)\n```", text,
                      re.DOTALL)
    assert found, f"docs/cache.md has no JSON example for {command}"
    return json.loads(found.group(1))


def assert_same_keys(document, example, where="$"):
    assert isinstance(document, type(example)), where
    if isinstance(example, dict):
        assert sorted(document) == sorted(example), where
        for key, value in example.items():
            assert_same_keys(document[key], value, f"{where}.{key}")
    elif isinstance(example, list) and example and document:
        for item in document:
            assert_same_keys(item, example[0], f"{where}[]")


def test_cli_list_json_has_the_documented_keys(two_added):
    result = runner.invoke(app, ["list", "--json", "--crds-path", str(two_added.root)])
    document = json.loads(result.stdout)
    assert_same_keys(document, documented_json("list"))
    assert (document["schema_version"], document["context"], document["current"]) == (
        1, "ligeriri_0003.pmap", True)
    assert document["rules"][1] == {"instrument": "IRIS", "detector": "IMG1",
                                    "subarray": "SUB64", "useafter": "2021-01-01 00:00:00",
                                    "reference": "iris_dq_0002.fits"}
    assert document["references"] == [str(two_added.reference_path("iris_dq_0001.fits")),
                                      str(two_added.reference_path("iris_dq_0002.fits"))]


def test_cli_bestref_json_has_the_documented_keys(two_added):
    result = runner.invoke(app, ["bestref", "--json", *params(observation()),
                                 "--crds-path", str(two_added.root)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert_same_keys(document, documented_json("bestref"))
    assert document == {"schema_version": 1, "context": "ligeriri_0003.pmap", "found": True,
                        "reference": "iris_dq_0002.fits", "exists": True,
                        "path": str(two_added.reference_path("iris_dq_0002.fits")),
                        "reason": "", "origin": "crds"}


def test_cli_bestref_json_of_no_match_exits_1(two_added):
    result = runner.invoke(app, ["bestref", "--json", *params(observation("2019-01-01")),
                                 "--crds-path", str(two_added.root)])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["found"], document["reference"], document["path"], document["reason"]) \
        == (False, None, None, "No match found.")


def test_cli_verify_json_has_the_documented_keys(leftovers):
    cache, _ = leftovers
    result = runner.invoke(app, ["verify", "--json", "--crds-path", str(cache.root)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert_same_keys(document, documented_json("verify"))
    assert (document["ok"], document["problems"], len(document["warnings"])) == (True, [], 3)


def test_cli_clean_json_has_the_documented_keys(leftovers):
    cache, made = leftovers
    result = runner.invoke(app, ["clean", "--json", "--crds-path", str(cache.root)])
    document = json.loads(result.stdout)
    assert_same_keys(document, documented_json("clean"))
    assert document["removed"] == [{"path": str(path), "bytes": size} for path, size in
                                   sorted(zip(made, (1, 2, 3), strict=True))]


# -- --crds-path, with --path as its alias --------------------------------------------------
@pytest.mark.parametrize("option", ["--crds-path", "--path"])
@pytest.mark.parametrize("command", ["init", "list", "verify", "clean"])
def test_every_cache_command_takes_crds_path_and_its_alias_path(two_added, command, option):
    result = runner.invoke(app, [command, option, str(two_added.root)])
    assert result.exit_code == 0, result.output
    assert str(two_added.root) in result.stdout


@pytest.mark.parametrize("command", ["init", "add", "bestref", "list", "verify", "clean",
                                     "adopt"])
def test_every_cache_command_offers_crds_path_and_its_alias_path(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert "--crds-path" in result.stdout and "--path" in result.stdout


# -- speed -----------------------------------------------------------------------------------
def test_importing_the_cache_cli_imports_neither_crds_nor_numpy():
    done = subprocess.run([sys.executable, "-c", (
        "import sys, dqref.cache.cli; "
        "print(sorted(m for m in ('crds', 'crds.bestrefs', 'crds.certify', 'numpy', "
        "'astropy.io.fits') if m in sys.modules))")], capture_output=True, text=True,
        check=True)
    assert done.stdout == "[]\n"
