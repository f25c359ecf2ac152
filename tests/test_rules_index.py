"""The rules index (issue 15): a verified cache of crds's own answer to ``cache list``.

`LocalCache.rules` asks crds once per context and keeps the answer in
``<cache>/.dqref/rules/<pmap>.json`` with the sha256 of every mapping the context names;
the index is used only while those bytes are unchanged, so ``dqref cache list`` needs no
crds (nor numpy, nor astropy) in the common case and still shows crds's answer, or crds's
error, after any edit. Every file here is real (``tmp_path``); no mocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import user_namespace_with_tmpfs_works
from typer.testing import CliRunner

from dqref.atomic import temporary_sibling
from dqref.cache import crds_adapter, rules_index
from dqref.cache.cli import app
from dqref.cache.local_cache import LocalCache, RuleEntry
from dqref.version import version

runner = CliRunner()
SUB64 = ("SUB64", 1, 1, 64)
RMAP = "ligeriri_iris_dq_0002.rmap"
BIN = Path(sys.executable).parent
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: The rules of context ligeriri_0003.pmap of the `two_added` cache.
RULES_0003 = [
    RuleEntry("IRIS", "IMG1", "SUB64", "2020-01-01 00:00:00", "iris_dq_0001.fits"),
    RuleEntry("IRIS", "IMG1", "SUB64", "2021-01-01 00:00:00", "iris_dq_0002.fits"),
]
#: Run ``dqref cache list`` as a user does, then report which heavy packages it imported.
PROBE = """
import json, runpy, sys
sys.argv = ["dqref", "cache", "list", "--crds-path", sys.argv[1]]
try:
    runpy.run_module("dqref.cli", run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"exit": code, **{name: name in sys.modules
                                   for name in ("crds", "numpy", "astropy")}}),
      file=sys.stderr)
"""


@pytest.fixture
def two_added(tmp_path, make_reference):
    """A cache with A (2020, iris_dq_0001) and B (2021, iris_dq_0002); context 0003."""
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    for name, useafter, pixel in (("a.fits", "2020-01-01", (1, 1)),
                                  ("b.fits", "2021-01-01", (2, 2))):
        cache.add(make_reference(tmp_path / name, "IRIS1", useafter, [pixel], subarray=SUB64,
                                 description="a small test reference"))
    return cache


def index_file(cache: LocalCache, context: str = "ligeriri_0003.pmap") -> Path:
    return cache.root / ".dqref" / "rules" / f"{context}.json"


def listed(cache: LocalCache, *options: str):
    result = runner.invoke(app, ["list", "--crds-path", str(cache.root), *options])
    assert result.exit_code == 0, result.output
    return result.stdout


def probe(cache: LocalCache) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(cache.root)], capture_output=True,
                          text=True, timeout=120)
    return json.loads(done.stderr.splitlines()[-1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rechecksummed(cache: LocalCache, name: str, old: str, new: str) -> None:
    """Change ``old`` to ``new`` in mapping ``name`` and rewrite its sha1sum (crds's tool)."""
    path = cache.mapping_dir / name
    text = path.read_text()
    assert old in text
    path.write_text(crds_adapter.with_checksum(text.replace(old, new), name))


# -- what the index holds ---------------------------------------------------------------------
def test_add_writes_the_index_of_the_context_it_publishes(two_added):
    document = json.loads(index_file(two_added).read_text())
    named = ["ligeriri_0003.pmap", "ligeriri_iris_0003.imap", RMAP,
             "ligeriri_liger_0001.imap"]
    assert document == {
        "format": rules_index.FORMAT,
        "dqref_version": version(),
        "crds_version": crds_adapter.crds_version(),
        "context": "ligeriri_0003.pmap",
        "mappings": {name: sha256(two_added.mapping_dir / name) for name in sorted(named)},
        "rules": [rule.__dict__ for rule in RULES_0003],
    }
    assert sorted(document["mappings"]) == crds_adapter.mapping_names(two_added.context())
    assert index_file(two_added, "ligeriri_0002.pmap").is_file()


def test_init_writes_the_index_of_the_initial_context(tmp_path):
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    document = json.loads(index_file(cache, "ligeriri_0001.pmap").read_text())
    assert (document["context"], document["rules"]) == ("ligeriri_0001.pmap", [])


def test_rules_from_the_index_equal_crds_rules(two_added):
    assert LocalCache(two_added.root).rules() == RULES_0003
    shutil.rmtree(two_added.root / ".dqref")
    assert LocalCache(two_added.root).rules() == RULES_0003
    assert index_file(two_added).is_file()  # rules() wrote it back


@pytest.mark.parametrize("options", [(), ("--json",), ("--context", "ligeriri_0002.pmap")])
def test_list_prints_the_same_with_and_without_the_index(two_added, options):
    with_index = listed(two_added, *options)
    shutil.rmtree(two_added.root / ".dqref")
    without_index = listed(two_added, *options)
    assert without_index == with_index
    assert "iris_dq_0001.fits" in with_index
    assert listed(two_added, *options) == with_index  # from the index written back


# -- the index is what makes list fast ----------------------------------------------------
def test_list_with_a_valid_index_imports_neither_crds_nor_numpy_nor_astropy(two_added):
    assert probe(two_added) == {"exit": 0, "crds": False, "numpy": False, "astropy": False}


def test_the_cache_modules_import_no_crds():
    code = ("import sys, dqref.cache.local_cache, dqref.cache.crds_adapter, dqref.cache.cli; "
            "print(sorted(name for name in ('crds', 'numpy', 'astropy', 'jinja2', 'filelock') "
            "if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout == "[]\n", done.stderr


def test_list_without_the_index_asks_crds_and_writes_it_back(two_added):
    index_file(two_added).unlink()
    assert probe(two_added) == {"exit": 0, "crds": True, "numpy": True, "astropy": True}
    assert probe(two_added)["crds"] is False


# -- the index is used only while every mapping has the bytes it recorded -------------------
def test_a_changed_and_rechecksummed_rmap_invalidates_the_index(two_added):
    rechecksummed(two_added, RMAP, "2021-01-01 00:00:00", "2022-02-02 00:00:00")
    output = listed(two_added)
    assert "useafter=2022-02-02 00:00:00  iris_dq_0002.fits" in output
    assert "2021-01-01" not in output
    document = json.loads(index_file(two_added).read_text())
    assert document["mappings"][RMAP] == sha256(two_added.mapping_dir / RMAP)
    assert probe(two_added)["crds"] is False


def test_a_changed_rmap_with_a_stale_checksum_gives_crds_error_despite_the_index(two_added):
    path = two_added.mapping_dir / RMAP
    path.write_text(path.read_text().replace("2021-01-01", "2022-02-02"))
    result = runner.invoke(app, ["list", "--crds-path", str(two_added.root)])
    assert result.exit_code == 2
    assert result.stderr.startswith("dqref: error: cannot load context ligeriri_0003.pmap")
    assert "sha1sum mismatch" in result.stderr and RMAP in result.stderr


def test_a_deleted_imap_gives_crds_error_despite_the_index(two_added):
    (two_added.mapping_dir / "ligeriri_iris_0003.imap").unlink()
    result = runner.invoke(app, ["list", "--crds-path", str(two_added.root)])
    assert result.exit_code == 2
    assert result.stderr.startswith("dqref: error: cannot load context ligeriri_0003.pmap")


def test_edited_rules_are_not_trusted_when_a_digest_does_not_match(two_added):
    path = index_file(two_added)
    document = json.loads(path.read_text())
    document["rules"][0]["reference"] = "iris_dq_0009.fits"
    document["mappings"][RMAP] = "0" * 64
    path.write_text(json.dumps(document))
    assert LocalCache(two_added.root).rules() == RULES_0003
    assert json.loads(path.read_text())["mappings"][RMAP] == sha256(two_added.mapping_dir / RMAP)


def test_edited_rules_whose_digests_match_are_trusted_the_cache_root_is_ours(two_added):
    """What docs/cache.md says: the index is trusted as far as its digests go, because
    only dqref writes under the cache root."""
    path = index_file(two_added)
    document = json.loads(path.read_text())
    document["rules"][0]["reference"] = "iris_dq_0009.fits"
    path.write_text(json.dumps(document))
    assert LocalCache(two_added.root).rules()[0].reference == "iris_dq_0009.fits"


def edit_document(key: str, value):
    def edit(document: dict, cache: LocalCache) -> None:
        document[key] = value
    return edit


def drop_pmap(document: dict, cache: LocalCache) -> None:
    del document["mappings"]["ligeriri_0003.pmap"]


def add_escaping_name(document: dict, cache: LocalCache) -> None:
    outside = cache.root.parent / "outside.pmap"
    outside.write_text("not ours")
    document["mappings"]["../../../outside.pmap"] = sha256(outside)


@pytest.mark.parametrize("edit", [
    edit_document("format", rules_index.FORMAT + 1),
    edit_document("dqref_version", "0.0.0"),
    edit_document("crds_version", "0.0.0"),
    edit_document("context", "ligeriri_0002.pmap"),
    drop_pmap,
    add_escaping_name,
    edit_document("mappings", ["ligeriri_0003.pmap"]),
], ids=["format", "dqref", "crds", "context", "pmap-missing", "escaping-name",
        "mappings-list"])
def test_an_index_that_does_not_describe_this_context_is_not_used(two_added, edit):
    """Each index carries wrong rules behind correct digests, so using it would show."""
    path = index_file(two_added)
    document = json.loads(path.read_text())
    document["rules"][0]["reference"] = "iris_dq_0009.fits"
    edit(document, two_added)
    path.write_text(json.dumps(document))
    assert LocalCache(two_added.root).rules() == RULES_0003
    assert json.loads(path.read_text())["rules"] == [rule.__dict__ for rule in RULES_0003]


@pytest.mark.parametrize("rules", [
    [{"instrument": "IRIS"}],
    [{**RULES_0003[0].__dict__, "extra": "x"}],
    [{**RULES_0003[0].__dict__, "useafter": 2020}],
    "iris_dq_0001.fits",
    [["IRIS", "IMG1", "SUB64", "2020-01-01 00:00:00", "iris_dq_0001.fits"]],
], ids=["short", "extra-key", "number", "text", "list"])
def test_malformed_rules_behind_correct_digests_are_not_used(two_added, rules):
    path = index_file(two_added)
    document = json.loads(path.read_text())
    document["rules"] = rules
    path.write_text(json.dumps(document))
    assert LocalCache(two_added.root).rules() == RULES_0003


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b"\xff\xfe not utf-8",
                                     b"[" * 100_000 + b"]" * 100_000, b'"text"'],
                         ids=["empty", "truncated", "list", "not-utf-8", "deep", "string"])
def test_an_unreadable_index_is_replaced_silently(two_added, content):
    index_file(two_added).write_bytes(content)
    assert LocalCache(two_added.root).rules() == RULES_0003
    assert json.loads(index_file(two_added).read_text())["context"] == "ligeriri_0003.pmap"


def test_an_index_that_is_a_fifo_is_never_opened(two_added):
    path = index_file(two_added)
    path.unlink()
    os.mkfifo(path)
    signal.alarm(60)  # opening a FIFO to read would wait for a writer forever
    try:
        assert LocalCache(two_added.root).rules() == RULES_0003
    finally:
        signal.alarm(0)
    assert path.is_file()  # the name was replaced by an index; the FIFO was never opened


# -- the index never makes list fail --------------------------------------------------------
@pytest.mark.skipif(not user_namespace_with_tmpfs_works(),
                    reason="no user namespaces for a private tmpfs")
def test_a_cache_on_a_read_only_file_system_lists_without_an_index(tmp_path, make_reference):
    reference = make_reference(tmp_path / "a.fits", "IRIS1", "2020-01-01", [(1, 1)],
                               subarray=SUB64, description="a small test reference")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        f"mount -t tmpfs -o size=4m none '{disk}' && cd '{disk}' && "
        "dqref cache init --path cache >/dev/null && "
        f"dqref cache add '{reference}' --path cache --no-roundtrip >/dev/null && "
        "dqref cache list --path cache > with_index && rm -r cache/.dqref && "
        f"mount -o remount,ro '{disk}' && "
        "{ dqref cache list --path cache; echo list=$?; } && "
        "{ dqref cache list --path cache --json >/dev/null; echo json=$?; } && "
        "cat with_index && ls -A cache")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, timeout=300, env={
                              **os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert done.stderr == ""
    listing, rest = done.stdout.split("list=0\n")
    assert rest.splitlines()[0] == "json=0"
    assert "\n".join(rest.splitlines()[1:]) + "\n" == listing + "config\nmappings\nreferences\n"
    assert "iris_dq_0001.fits" in listing


@pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")
def test_a_read_only_cache_lists_without_writing_an_index(two_added):
    expected = listed(two_added)
    shutil.rmtree(two_added.root / ".dqref")
    everything = [two_added.root, *two_added.root.rglob("*")]
    try:
        for path in everything:
            path.chmod(0o555 if path.is_dir() else 0o444)
        assert listed(two_added) == expected
    finally:
        for path in everything:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert not (two_added.root / ".dqref").exists()


def test_an_index_folder_linked_outside_the_cache_is_never_written_nor_read(two_added,
                                                                           tmp_path):
    expected = listed(two_added)
    forged = json.loads(index_file(two_added).read_text())
    forged["rules"][0]["reference"] = "iris_dq_0009.fits"  # digests still right
    shutil.rmtree(two_added.root / ".dqref")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (two_added.root / ".dqref").symlink_to(outside, target_is_directory=True)
    assert listed(two_added) == expected
    assert list(outside.iterdir()) == []
    (outside / "rules").mkdir()
    (outside / "rules" / "ligeriri_0003.pmap.json").write_text(json.dumps(forged))
    assert listed(two_added) == expected  # not under the root that only dqref writes


# -- verify, clean and crds's own tools live with the index ----------------------------------
def test_verify_passes_with_an_index_present_or_corrupt(two_added):
    assert LocalCache(two_added.root).verify_report().problems == []
    index_file(two_added).write_bytes(b"\xff not an index")
    report = LocalCache(two_added.root).verify_report()
    assert (report.problems, report.warnings) == ([], [])


def test_a_temporary_file_of_an_interrupted_index_write_is_a_leftover(two_added):
    leftover = temporary_sibling(index_file(two_added))
    leftover.write_bytes(b"{")
    assert LocalCache(two_added.root).leftovers() == [leftover]
    assert [item.path for item in LocalCache(two_added.root).clean()] == [leftover]
    assert index_file(two_added).is_file()


def test_crds_lists_the_mappings_of_a_cache_holding_an_index(two_added):
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("CRDS_")}
    environment.update(CRDS_PATH=str(two_added.root), CRDS_OBSERVATORY="ligeriri",
                       CRDS_MODE="local")
    done = subprocess.run([str(BIN / "crds"), "list",
                           "--cached-mappings"], env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert RMAP in done.stdout and ".json" not in done.stdout
