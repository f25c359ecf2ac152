"""Naming and location policy of the ``ligeriri`` CRDS observatory.

crds calls these plugin functions through ``crds.ligeriri.locate`` (see ``crds/tobs/locate.py``
for the template they follow). Names:

- mappings: ``ligeriri_0001.pmap``, ``ligeriri_iris_0001.imap``, ``ligeriri_iris_dq_0001.rmap``
- references: ``iris_dq_0001.fits`` under ``references/ligeriri/iris/``
"""

import os.path
import re
import warnings

from crds.core import config, timestamp, utils
from crds.io import abstract

from . import FILEKINDS, INSTRUMENTS, TYPES

HERE = os.path.dirname(__file__) or "."
OBSERVATORY = "ligeriri"

get_row_keys_by_instrument = TYPES.get_row_keys_by_instrument
get_item = TYPES.get_item
suffix_to_filekind = TYPES.suffix_to_filekind
filekind_to_suffix = TYPES.filekind_to_suffix
get_all_tpninfos = TYPES.get_all_tpninfos

# Data-model keys (stpipe convention) and their FITS keyword synonyms. Either form in a
# header or parameter dict selects references.
CROSS_STRAPPED_KEYWORDS = {
    "META.INSTRUMENT.NAME": ["INSTRUME", "INSTRUMENT"],
    "META.INSTRUMENT.DETECTOR": ["DETECTOR"],
    "META.SUBARRAY.NAME": ["SUBARRAY"],
    "META.OBSERVATION.DATE": ["DATE-OBS"],
    "META.OBSERVATION.TIME": ["TIME-OBS"],
    "META.USEAFTER": ["USEAFTER"],
    "META.PEDIGREE": ["PEDIGREE"],
    "META.DESCRIPTION": ["DESCRIP"],
    "META.AUTHOR": ["AUTHOR"],
    "META.REFTYPE": ["REFTYPE"],
    "META.TELESCOPE": ["TELESCOP"],
}

_REFERENCE_NAME = re.compile(r"^([a-z]+)_([a-z]+)_(\d{4,})\.fits$")
_MAPPING_NAME = re.compile(r"^ligeriri(?:_([a-z]+))?(?:_([a-z]+))?(?:_(\d+))?\.([pir]map)$")


def tpn_path(tpn_file):
    return os.path.join(HERE, "tpns", tpn_file)


def get_extra_tpninfos(refpath):
    return []


def project_check(refpath):
    pass


def get_exptypes(instrument=None):
    return []


def get_static_pairs():
    return abstract.equivalence_dict_to_pairs(CROSS_STRAPPED_KEYWORDS)


def get_cross_strapped_pairs(header):
    """Return the keyword pairs that are synonyms (data-model key <-> FITS keyword)."""
    return get_static_pairs()


def cross_strap(header):
    """Return a copy of ``header`` in which every synonym of a defined keyword is defined."""
    crossed = {str(key).upper(): value for key, value in dict(header).items()}
    for master, slave in get_static_pairs():
        if crossed.get(slave, "UNDEFINED") == "UNDEFINED" and \
                crossed.get(master, "UNDEFINED") != "UNDEFINED":
            crossed[slave] = crossed[master]
    return crossed


def fits_to_parkeys(header):
    """Map a FITS header or a data-model parameter dict onto rmap parkeys."""
    return cross_strap(header)


def condition_matching_header(rmapping, header):
    """Condition the matching header values to the normalized form of the rmap."""
    return utils.condition_header(cross_strap(header))


def reference_keys_to_dataset_keys(rmapping, header):
    """Map a reference header back onto dataset keys (USEAFTER -> observation date/time)."""
    result = cross_strap(header)
    if "USEAFTER" in result:
        date, time = timestamp.reformat_date(result["USEAFTER"]).split()
        result["META.OBSERVATION.DATE"] = result["DATE-OBS"] = date
        result["META.OBSERVATION.TIME"] = result["TIME-OBS"] = time
    return result


def header_to_reftypes(header, context):
    """All reference types apply to every dataset."""
    return []


def match_context_key(key):
    """Return the canonical form of a pmap/imap selector key."""
    return key.upper() if key.lower() in INSTRUMENTS else key.lower()


def get_file_properties(filename):
    """Return (instrument, filekind) of a mapping or reference name."""
    return decompose_newstyle_name(filename)[2:4]


def decompose_newstyle_name(filename):
    """Split a ligeriri name into (path, observatory, instrument, filekind, serial, ext)."""
    path, name = os.path.split(filename)
    base, ext = os.path.splitext(name)
    mapping = _MAPPING_NAME.fullmatch(name)
    if mapping:
        first, second, serial, _ = mapping.groups()
        if ext == ".pmap":
            instrument, filekind = "", ""
        elif ext == ".imap":
            instrument, filekind = first or "", ""
        else:
            instrument, filekind = first or "", second or ""
        return path, OBSERVATORY, instrument, filekind, serial or "", ext
    reference = _REFERENCE_NAME.fullmatch(name)
    if reference:
        instrument, filekind, serial = reference.groups()
        assert instrument in INSTRUMENTS, f"Invalid instrument {instrument!r} in {filename!r}"
        assert filekind in FILEKINDS, f"Invalid filekind {filekind!r} in {filename!r}"
        return path, OBSERVATORY, instrument, filekind, serial, ext
    raise AssertionError(f"Invalid ligeriri file name {filename!r}")


def get_reference_properties(filename):
    return decompose_newstyle_name(filename)


def properties_inside_mapping(filename):
    return get_file_properties(filename)


def get_env_prefix(instrument):
    return "crds://"


def filekind_to_keyword(filekind):
    """Return the FITS keyword at which a reference should be recorded (R_DQ)."""
    return "R_" + filekind.upper()


def locate_file(refname, mode=None, parameters=None):
    """Return the cache path of a reference: references/ligeriri/<instrument>/<name>."""
    instrument = get_reference_properties(refname)[2]
    return os.path.join(locate_dir(instrument, mode), os.path.basename(refname))


def locate_dir(instrument, mode=None):
    """Return the instrument folder of the reference cache (``instrument`` mode only)."""
    if mode is None:
        mode = config.get_crds_ref_subdir_mode(observatory=OBSERVATORY)
    rootdir = config.get_crds_refpath(OBSERVATORY)
    if mode == "flat":
        return rootdir
    return os.path.join(rootdir, instrument)


def hijack_warnings(func, *args, **keys):
    """Run ``func`` with astropy warnings always shown (as crds's observatories do)."""
    with warnings.catch_warnings():
        from astropy.utils.exceptions import AstropyUserWarning

        warnings.simplefilter("always", AstropyUserWarning)
        return func(*args, **keys)
