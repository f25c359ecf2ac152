"""Package attributes loaded on first use (PEP 562), so importing a package stays cheap.

``dqref``, ``dqref.derive`` and ``dqinit`` re-export their public names this way: the
command-line programs import those packages to build their command tree, and must not pay
for numpy, astropy, scipy or crds until a command needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, exports: Mapping[str, str],
                    namespace: dict) -> Callable[[str], object]:
    """Return a module ``__getattr__`` that imports ``exports[name]`` when ``name`` is used.

    Parameters
    ----------
    package : str
        The package's name, for the AttributeError of an unknown name.
    exports : mapping of str to str
        Public name -> the module that defines it; a name equal to its module's last
        component (``flags`` -> ``dqref.flags``) is the module itself.
    namespace : dict
        The package's ``globals()``; a loaded name is cached there.
    """

    def load(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name])
        value = module if exports[name].rsplit(".", 1)[-1] == name else getattr(module, name)
        namespace[name] = value
        return value

    return load
