"""Naming, location and header policy of the ``ligeriri`` CRDS observatory.

crds calls these plugin functions through ``crds.ligeriri.locate`` (``crds/tobs/locate.py``
and ``crds/jwst/locate.py`` are the templates they follow). Names:

- mappings: ``ligeriri_0001.pmap``, ``ligeriri_iris_0001.imap``, ``ligeriri_iris_dq_0001.rmap``
  (the rmap's third part is the filekind's suffix: ``nonlin`` for ``nonlincoeff``);
- references: any crds reference name (``.fits``, ``.asdf``...) whose parts name the
  instrument and the filekind, in any case and order: dqref's ``iris_dq_0001.fits`` and the
  Liger/IRIS team's ``IRIS_DQ.fits``, ``IRIS_IMG1_DARK_20240924T000000_0.0.1.fits`` and
  ``liger_iris_iris_drizpars_0001.fits`` (``liger_iris_`` is a project prefix); a name that
  says neither is judged by its header (INSTRUME, REFTYPE), as crds's JWST package does.

Dataset headers are conditioned here too (`fits_to_parkeys`, the hook crds calls on every
best-reference header): FITS keywords and data-model keys are cross-strapped, the
observation start is derived from the pipeline's EXPDTST/EXPJDST when DATE-OBS/TIME-OBS
are absent, and detector names are canonical (``IRIS1`` selects what ``IMG1`` does).
"""

import datetime
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
    "META.INSTRUMENT.FILTER": ["FILTER"],
    "META.INSTRUMENT.PUPIL": ["PUPIL"],
    "META.INSTRUMENT.ERA": ["ERA"],
    "META.SUBARRAY.NAME": ["SUBARRAY"],
    "META.OBSERVATION.DATE": ["DATE-OBS"],
    "META.OBSERVATION.TIME": ["TIME-OBS"],
    "META.EXPOSURE.DATETIME_START": ["EXPDTST"],
    "META.EXPOSURE.JD_START": ["EXPJDST"],
    "META.EXPOSURE.IMTYPE": ["IMTYPE"],
    "META.EXPOSURE.READMODE": ["READMODE"],
    "META.DATE": ["DATE"],
    "META.USEAFTER": ["USEAFTER"],
    "META.PEDIGREE": ["PEDIGREE"],
    "META.DESCRIPTION": ["DESCRIP"],
    "META.AUTHOR": ["AUTHOR"],
    "META.REFTYPE": ["REFTYPE"],
    "META.TELESCOPE": ["TELESCOP"],
}

_UNDEFINED = (None, "", "UNDEFINED", "N/A")
_PROJECT_PREFIXES = ("ligeriri_", "liger_iris_")
_MAPPING_NAME = re.compile(r"^ligeriri(?:_([a-z]+))?(?:_([a-z]+))?(?:_(\d+))?\.([pir]map)$")
_SERIAL = re.compile(r"_(\d{4,})$")
_DATETIME_DIGITS = re.compile(r"(\d{14})(?:\.0*)?")


def tpn_path(tpn_file):
    return os.path.join(HERE, "tpns", tpn_file)


def get_extra_tpninfos(refpath):
    return []


def project_check(refpath, rmap=None):
    """Checks of a reference beyond the tpn constraints (none: dqref validates its own)."""


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
        for one, other in ((master, slave), (slave, master)):
            if _undefined(crossed.get(other)) and not _undefined(crossed.get(one)):
                crossed[other] = crossed[one]
    return crossed


def fits_to_parkeys(header):
    """Map a FITS header or a data-model parameter dict onto rmap parkeys.

    crds calls this on every dataset header it selects for (``minimize_header``, used by
    ``getrecommendations``, ``getreferences``, stpipe and ``crds bestrefs``):

    - synonyms are cross-strapped (`CROSS_STRAPPED_KEYWORDS`);
    - with no DATE-OBS/TIME-OBS, the observation start comes from EXPDTST
      (``YYYYMMDDHHMMSS``), else from EXPJDST (a Julian Date), the Liger/IRIS pipeline's
      keywords; META.DATE, the team's UseAfter key, is the observation start when the
      header has none;
    - DETECTOR is the canonical name of `dqref.detectors` (``IRIS1`` -> ``IMG1``) and
      INSTRUME upper case.
    """
    crossed = cross_strap(header)
    _add_observation_start(crossed)
    _canonical_names(crossed)
    return cross_strap(crossed)


def _undefined(value):
    return value is None or str(value).strip().upper() in _UNDEFINED


def observation_start(header):
    """Return the observation start of ``header`` as ``datetime``, or None.

    DATE-OBS/TIME-OBS first, then EXPDTST, then EXPJDST (Julian Date, whatever the
    pipeline's header comment says: 2460827.5 is 2025-06-01T00:00:00).
    """
    date = header.get("META.OBSERVATION.DATE", header.get("DATE-OBS"))
    if not _undefined(date):
        time = header.get("META.OBSERVATION.TIME", header.get("TIME-OBS"))
        text = f"{date} {time if not _undefined(time) else '00:00:00'}"
        try:
            return datetime.datetime.fromisoformat(timestamp.reformat_date(text).strip())
        except (ValueError, TypeError):
            return None
    stamp = header.get("META.EXPOSURE.DATETIME_START", header.get("EXPDTST"))
    # crds's condition_header turns the digits into a float's text ('20250601000000.0')
    digits = _DATETIME_DIGITS.fullmatch(str(stamp).strip()) if not _undefined(stamp) else None
    if digits:
        try:
            return datetime.datetime.strptime(digits.group(1), "%Y%m%d%H%M%S")
        except ValueError:
            pass
    julian = header.get("META.EXPOSURE.JD_START", header.get("EXPJDST"))
    if not _undefined(julian):
        try:
            from astropy.time import Time

            return Time(float(julian), format="jd", scale="utc").to_datetime()
        except (ValueError, TypeError):
            pass
    return None


def _add_observation_start(crossed):
    start = observation_start(crossed)
    if start is None:
        return
    start = start.replace(microsecond=0)
    date, time = start.date().isoformat(), start.time().isoformat()
    for keys, value in ((("META.OBSERVATION.DATE", "DATE-OBS"), date),
                        (("META.OBSERVATION.TIME", "TIME-OBS"), time),
                        (("META.DATE", "DATE"), f"{date}T{time}")):
        if all(_undefined(crossed.get(key)) for key in keys):
            for key in keys:
                crossed[key] = value


def _canonical_names(crossed):
    from dqref.detectors import canonical_detector, canonical_instrument

    instrument = crossed.get("META.INSTRUMENT.NAME")
    if _undefined(instrument):
        return
    for key in ("META.INSTRUMENT.NAME", "INSTRUME", "INSTRUMENT"):
        if key in crossed:
            crossed[key] = canonical_instrument(crossed[key])
    for key in ("META.INSTRUMENT.DETECTOR", "DETECTOR"):
        if not _undefined(crossed.get(key)):
            crossed[key] = canonical_detector(instrument, crossed[key])


def condition_matching_header(rmapping, header):
    """Condition the matching header values to the normalized form of the rmap."""
    return utils.condition_header(fits_to_parkeys(header))


def reference_keys_to_dataset_keys(rmapping, header):
    """Map a reference header onto dataset keys (USEAFTER -> observation date/time)."""
    result = cross_strap(header)
    if not _undefined(result.get("USEAFTER")):
        date, time = timestamp.reformat_date(result["USEAFTER"]).split()
        result["META.OBSERVATION.DATE"] = result["DATE-OBS"] = date
        result["META.OBSERVATION.TIME"] = result["TIME-OBS"] = time
        result["META.DATE"] = result["DATE"] = f"{date}T{time}"
    return fits_to_parkeys(result)


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
    """Split a ligeriri name into (path, observatory, instrument, filekind, serial, ext).

    Raises
    ------
    AssertionError
        Neither the name nor (for a reference file that exists) its header says which
        instrument and filekind it is; crds's plugins signal a bad name this way.
    """
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
            instrument, filekind = first or "", _filekind_of(first or "", second or "")
        return path, OBSERVATORY, instrument, filekind, serial or "", ext
    assert config.is_reference(name) and not name.startswith("."), \
        f"Invalid ligeriri file name {filename!r}"
    instrument, filekind = _properties_from_name(base)
    if not (instrument and filekind) and os.path.isfile(filename):
        instrument, filekind = _properties_from_header(filename, instrument, filekind)
    assert instrument in INSTRUMENTS, f"Invalid instrument in ligeriri file name {filename!r}"
    assert filekind in FILEKINDS, f"Invalid filekind in ligeriri file name {filename!r}"
    serial = _SERIAL.search(base)
    return path, OBSERVATORY, instrument, filekind, serial.group(1) if serial else "", ext


def _filekind_of(instrument, token):
    if token in FILEKINDS:
        return token
    try:
        return suffix_to_filekind(instrument, token)
    except KeyError:
        return token


def _properties_from_name(base):
    lowered = base.lower()
    for prefix in _PROJECT_PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
            break
    tokens = re.split(r"[_\-.]", lowered)
    instrument = next((t for t in tokens if t in INSTRUMENTS), "")
    filekind = ""
    for token in tokens:
        kind = _filekind_of(instrument, token) if instrument else token
        if kind in FILEKINDS:
            filekind = kind
            break
    return instrument, filekind


def _properties_from_header(filename, instrument, filekind):
    try:
        from astropy.io import fits

        header = fits.getheader(filename)
    except (OSError, ValueError):
        return instrument, filekind
    instrument = instrument or str(header.get("INSTRUME", "")).strip().lower()
    filekind = filekind or str(header.get("REFTYPE", "")).strip().lower()
    return instrument, filekind


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
    instrument = get_reference_properties(os.path.basename(refname))[2]
    return os.path.join(locate_dir(instrument, mode), os.path.basename(refname))


def locate_dir(instrument, mode=None):
    """Return the instrument folder of the reference cache (``instrument`` or ``flat`` mode).

    crds reads the mode from ``config/ligeriri/ref_cache_subdir_mode`` of the cache.
    """
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
