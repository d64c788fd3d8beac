"""The oldest versions keras_optlab runs on, and the check that refuses older ones.

The same floors are declared in ``pyproject.toml`` and pinned in ``.ci/minimum.txt``,
where ``make test-min`` runs the core suite at exactly these versions
(``tests/workflows/test_versions.py`` keeps the three in agreement). Below them things
break at the first real call, not at import: on Keras 3.8–3.9 every optimizer fails at
``build`` (``add_optimizer_variables`` arrived in Keras 3.10); with Keras Tuner
1.4.0–1.4.5 every trial fails (``filename must end in .weights.h5``).

pip enforces the floors at install. An environment put together otherwise (``pip install
--no-deps``, ``PYTHONPATH``, a conda mix) gets an :class:`DependencyVersionError` (an
``ImportError``) naming the installed and the required version and the pip command:

* at ``import keras_optlab``: Python, and the Keras that ``import keras`` would load
  (read from its ``keras-<version>.dist-info`` folder beside it, without importing Keras,
  so ``optlab --help`` stays fast);
* when Keras is imported (``keras_optlab.__init__._register_serializables``): the
  imported ``keras``, ``numpy`` and, if loaded, ``tensorflow`` themselves;
* at ``import keras_optlab.tuning``: ``keras_tuner``.

Only the standard library is imported here.
"""

import importlib.machinery
import os
import re
import sys

PYTHON = (3, 11)
# distribution name (as pip writes it) -> (module name, minimum version)
MINIMUM = {
    "keras": ("keras", "3.10.0"),
    "tensorflow": ("tensorflow", "2.16.2"),
    "numpy": ("numpy", "1.26.4"),
    "keras-tuner": ("keras_tuner", "1.4.6"),
    "tensorboard": ("tensorboard", "2.16.2"),
}
# What is checked when Keras is imported (keras_tuner: by keras_optlab.tuning).
CHECKED_WITH_KERAS = ("keras", "numpy", "tensorflow")


class DependencyVersionError(ImportError):
    """A dependency older than keras_optlab's floor (an ``ImportError``)."""


def release(version):
    """``(major, minor, micro)`` of a version string (``"3.15.1.dev0"`` → ``(3, 15, 1)``,
    ``"2.16.0rc1"`` → ``(2, 16, 0)``), or None when it does not start with a number."""
    match = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(version))
    return None if match is None else tuple(int(part or 0) for part in match.groups())


def require(distribution, installed, where=None):
    """Raise :class:`DependencyVersionError` if ``installed`` (a version string) is below
    ``distribution``'s floor. An unreadable version passes: the check only refuses what
    it knows to be too old."""
    minimum = MINIMUM[distribution][1]
    found = release(installed)
    if found is None or found >= release(minimum):
        return
    place = f" at {where}" if where else ""
    raise DependencyVersionError(
        f"keras_optlab requires {distribution}>={minimum}, but {distribution} "
        f"{installed} is installed{place}. Upgrade it: pip install --upgrade \"{distribution}>={minimum}\""
    )


def check_python(version_info=None):
    """Refuse a Python below :data:`PYTHON` (``requires-python`` in pyproject.toml)."""
    version_info = sys.version_info if version_info is None else version_info
    if tuple(version_info[:2]) < PYTHON:
        floor = ".".join(map(str, PYTHON))
        raise DependencyVersionError(
            f"keras_optlab requires Python>={floor}, but this is Python "
            f"{'.'.join(map(str, version_info[:3]))} ({sys.executable}). Install it into a Python {floor} "
            f"or newer environment: <python{floor}> -m pip install keras-optlab"
        )


def installed_version(module):
    """The version of the distribution that ``import module`` would load, from the
    ``<name>-<version>.dist-info`` folder beside it (the wheel standard), without importing
    it; ``(version, folder)``, or ``(None, None)`` when not found or ambiguous (then the
    check waits for the import)."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(module)
    except (ImportError, ValueError):
        return None, None
    locations = list(getattr(spec, "submodule_search_locations", None) or [])
    if spec is None or len(locations) != 1:
        return None, None
    folder = os.path.dirname(os.path.abspath(locations[0]))
    pattern = re.compile(rf"^{re.escape(module)}-([^-]+)\.dist-info$", re.IGNORECASE)
    try:
        versions = [m.group(1) for m in map(pattern.match, os.listdir(folder)) if m]
    except OSError:
        return None, None
    return (versions[0], folder) if len(versions) == 1 else (None, None)


def check_installed(distribution="keras"):
    """Before ``distribution`` is imported: refuse the one ``import`` would load if its
    dist-info says it is too old."""
    module = MINIMUM[distribution][0]
    if module in sys.modules:
        return
    version, folder = installed_version(module)
    if version is not None:
        require(distribution, version, os.path.join(folder, module))


def check_imported(distributions=CHECKED_WITH_KERAS):
    """Refuse an imported module of ``distributions`` below its floor (``__version__``)."""
    for distribution in distributions:
        module = sys.modules.get(MINIMUM[distribution][0])
        if module is None:  # not imported (or blocked with sys.modules[name] = None)
            continue
        path = getattr(module, "__file__", None)
        require(distribution, getattr(module, "__version__", None), os.path.dirname(path) if path else None)
