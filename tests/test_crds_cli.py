"""crds's own command line on a cache made by dqref, each command a real subprocess.

The environment is what docs/cache.md tells a user to set: CRDS_PATH, CRDS_OBSERVATORY and
CRDS_MODE=local (no server URL: crds needs none offline). Nothing of ours is imported or
called first: the ``.pth`` import hook makes ``crds.ligeriri`` exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from dqref.cache.local_cache import LocalCache

BIN = Path(sys.executable).parent
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "clients" / \
    "liger_iris_pipeline" / "samples"


def crds_environment(cache: Path) -> dict:
    settings = {key: value for key, value in os.environ.items()
                if not key.startswith("CRDS_")}
    settings.update(CRDS_PATH=str(cache), CRDS_OBSERVATORY="ligeriri", CRDS_MODE="local")
    return settings


def run(cache: Path, *args, cwd=None, executable="crds") -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / executable), *args], env=crds_environment(cache),
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def log_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def dqref_cache(tmp_path_factory):
    """A cache made with the dqref commands: one IRIS reference made for DETECTOR=IRIS1."""
    folder = tmp_path_factory.mktemp("crds_cli")
    cache = folder / "cache"
    made = run(cache, "create", str(folder / "mask.fits"), "-i", "IRIS", "-d", "IRIS1",
               "--useafter", "2020-01-01T00:00:00", executable="dqref")
    assert made.returncode == 0, log_of(made)
    for args in (("cache", "init", "--path", str(cache)),
                 ("cache", "add", str(folder / "mask.fits"), "--path", str(cache),
                  "--no-roundtrip")):
        done = run(cache, *args, executable="dqref")
        assert done.returncode == 0, log_of(done)
    return folder, cache


def mapping(cache: Path, name: str) -> str:
    return str(cache / "mappings" / "ligeriri" / name)


def test_crds_list_mappings(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "list", "--mappings")
    assert result.returncode == 0, log_of(result)
    assert result.stdout.split() == ["ligeriri_0002.pmap", "ligeriri_iris_0002.imap",
                                     "ligeriri_iris_dq_0001.rmap", "ligeriri_liger_0001.imap"]


def test_crds_list_references(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "list", "--references")
    assert result.returncode == 0, log_of(result)
    assert result.stdout.split() == ["iris_dq_0001.fits"]


def test_crds_list_status(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "list", "--status")
    assert result.returncode == 0, log_of(result)
    assert "Effective Context = 'ligeriri_0002.pmap'" in result.stdout
    assert "Readonly Cache = False" in result.stdout


def test_crds_certify_of_our_mappings_has_no_errors(dqref_cache):
    _, cache = dqref_cache
    names = ["ligeriri_0002.pmap", "ligeriri_iris_0002.imap", "ligeriri_iris_dq_0001.rmap"]
    result = run(cache, "certify", *(mapping(cache, name) for name in names))
    assert result.returncode == 0, log_of(result)
    assert "0 errors" in log_of(result) and "0 warnings" in log_of(result)
    for name in names:
        assert f"Certifying '{mapping(cache, name)}'" in log_of(result)


def test_crds_certify_of_a_reference_made_by_dqref_create_has_no_errors(dqref_cache):
    folder, cache = dqref_cache
    result = run(cache, "certify", "--check-rmap-updates", str(folder / "mask.fits"), cwd=folder)
    assert result.returncode == 0, log_of(result)
    assert "0 errors" in log_of(result), log_of(result)
    assert "Inserting mask.fits into 'ligeriri_iris_dq_0001.rmap'" in log_of(result)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} (../shared) is absent")
def test_crds_bestrefs_update_bestrefs_writes_r_dq_on_a_pipeline_ramp(dqref_cache, tmp_path):
    """The team's IMG1 ramp (no DATE-OBS; EXPDTST) gets the reference made for IRIS1."""
    _, cache = dqref_cache
    ramp = tmp_path / "ramp.fits"
    shutil.copyfile(SAMPLES / "iris_img1_custom_lvl0.fits", ramp)
    result = run(cache, "bestrefs", "--files", str(ramp), "--update-bestrefs")
    assert result.returncode == 0, log_of(result)
    assert "0 errors" in log_of(result)
    assert fits.getheader(ramp)["R_DQ"] == "crds://iris_dq_0001.fits"


def test_crds_diff_of_two_contexts(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "diff", mapping(cache, "ligeriri_0001.pmap"),
                 mapping(cache, "ligeriri_0002.pmap"))
    assert "replaced N/A with ligeriri_iris_dq_0001.rmap" in result.stdout, log_of(result)
    assert "replaced ligeriri_iris_0001.imap with ligeriri_iris_0002.imap" in result.stdout


def test_crds_matches_shows_the_canonical_detector(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "matches", "--contexts", "ligeriri_0002.pmap", "--files",
                 "iris_dq_0001.fits")
    assert result.returncode == 0, log_of(result)
    assert "iris_dq_0001.fits : IRIS DQ META.INSTRUMENT.DETECTOR='IMG1' " \
           "META.SUBARRAY.NAME='N/A' META.OBSERVATION.DATE='2020-01-01'" in result.stdout


def test_crds_checksum_verifies_and_rewrites_our_mappings_unchanged(dqref_cache, tmp_path):
    _, cache = dqref_cache
    copy = tmp_path / "ligeriri_iris_dq_0001.rmap"
    shutil.copyfile(mapping(cache, "ligeriri_iris_dq_0001.rmap"), copy)
    verified = run(cache, "checksum", "--verify", str(copy))
    assert verified.returncode == 0 and "ERROR" not in log_of(verified), log_of(verified)
    rewritten = run(cache, "checksum", str(copy))
    assert rewritten.returncode == 0, log_of(rewritten)
    assert copy.read_text() == Path(mapping(cache, "ligeriri_iris_dq_0001.rmap")).read_text()


def test_crds_checksum_verify_names_a_tampered_mapping(dqref_cache, tmp_path):
    _, cache = dqref_cache
    copy = tmp_path / "ligeriri_iris_dq_0001.rmap"
    copy.write_text(Path(mapping(cache, "ligeriri_iris_dq_0001.rmap")).read_text()
                    .replace("2020-01-01", "2021-01-01"))
    result = run(cache, "checksum", "--verify", str(copy))
    assert "sha1sum mismatch in 'ligeriri_iris_dq_0001.rmap'" in log_of(result)


# -- crds's Python API and stpipe, in processes that never import dqref first ----------------
LOOKUP = """
import sys, crds
for detector in ("IRIS1", "IMG1", "img1"):
    answer = crds.getrecommendations(
        {"INSTRUME": "Iris", "DETECTOR": detector, "EXPDTST": "20250601000000"},
        reftypes=["dq"], observatory="ligeriri")
    print(detector, answer["dq"])
"""

STPIPE = """
from stpipe import crds_client
print(crds_client.get_reference_file(
    {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IMG1",
     "META.EXPOSURE.JD_START": 2460827.5, "META.SUBARRAY.NAME": "GENERIC"}, "dq", "ligeriri"))
"""


def test_getrecommendations_works_in_a_fresh_process_for_every_detector_spelling(dqref_cache):
    _, cache = dqref_cache
    result = run(cache, "-c", LOOKUP, executable="python")
    assert result.returncode == 0, log_of(result)
    assert result.stdout.split("\n")[:3] == ["IRIS1 iris_dq_0001.fits", "IMG1 iris_dq_0001.fits",
                                             "img1 iris_dq_0001.fits"]


def test_stpipe_get_reference_file_works_in_a_fresh_process(dqref_cache):
    pytest.importorskip("stpipe")
    _, cache = dqref_cache
    result = run(cache, "-c", STPIPE, executable="python")
    assert result.returncode == 0, log_of(result)
    assert result.stdout.strip() == str(LocalCache(cache).reference_path("iris_dq_0001.fits"))
