"""Make ``ligeriri`` a crds observatory in every process where ligeriri-dq is installed.

crds has no plugin interface: it imports ``crds.<observatory>`` and checks names against
``crds.core.constants.ALL_OBSERVATORIES``. ``ligeriri_crds_hook.pth`` (installed next to
this module in site-packages) calls `install` at interpreter start. That only puts a
finder on ``sys.meta_path``; nothing else is imported until a program imports crds:

- when ``crds.core.constants`` executes, ``"ligeriri"`` is appended to its observatory list;
- ``import crds.ligeriri`` loads the package in ``dqref/cache/observatory/`` under that name
  (crds reads specs, tpns and ``locate.py`` from it), without importing dqref itself.

This is the only crds contact outside ``dqref/cache/crds_adapter.py`` (which calls
`install` too, for processes started without site, e.g. ``python -S``). Its start-up cost
is measured in docs/cache.md. Standard library only, and imported lazily.
"""

import sys

OBSERVATORY = "ligeriri"
PACKAGE = "crds." + OBSERVATORY
CONSTANTS = "crds.core.constants"


class ObservatoryFinder:
    """A meta path finder answering for ``crds.ligeriri`` and ``crds.core.constants`` only."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PACKAGE:
            return observatory_spec()
        if fullname == CONSTANTS:
            return self._constants_spec(fullname, path, target)
        return None

    def _constants_spec(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _AddObservatoryLoader(spec.loader)
                return spec
        return None


class _AddObservatoryLoader:
    """Run crds's own loader for its constants module, then add ``ligeriri`` to the list."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        add_to_observatory_list(module)

    def __getattr__(self, name):  # get_source, get_filename... of the wrapped loader
        return getattr(self.loader, name)


def add_to_observatory_list(constants):
    """Append ``ligeriri`` to crds's observatory list (once; the list is shared by reference)."""
    if OBSERVATORY not in constants.ALL_OBSERVATORIES:
        constants.ALL_OBSERVATORIES.append(OBSERVATORY)


def observatory_spec():
    """Return the import spec of ``crds.ligeriri``: ``dqref/cache/observatory/`` by location."""
    import importlib.util
    import os.path

    dqref = importlib.util.find_spec("dqref")
    if dqref is None or not dqref.submodule_search_locations:
        return None
    for root in dqref.submodule_search_locations:
        folder = os.path.join(root, "cache", "observatory")
        init = os.path.join(folder, "__init__.py")
        if os.path.isfile(init):
            return importlib.util.spec_from_file_location(PACKAGE, init,
                                                          submodule_search_locations=[folder])
    return None


def install():
    """Put the finder first on ``sys.meta_path`` (idempotent); patch crds if already loaded."""
    if not any(isinstance(finder, ObservatoryFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, ObservatoryFinder())
    constants = sys.modules.get(CONSTANTS)
    if constants is not None and hasattr(constants, "ALL_OBSERVATORIES"):
        add_to_observatory_list(constants)
