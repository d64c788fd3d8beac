"""The declared minimum versions are true and enforced (issue 22, item 10).

* One set of floors: ``pyproject.toml``'s dependencies and ``requires-python``, the pins
  ``make test-min`` installs (``.ci/minimum.txt``: the core suite runs there at exactly
  those versions) and ``keras_optlab._versions.MINIMUM`` (the import-time check) agree.
* Below a floor the import fails at once with an ``ImportError`` naming the installed and
  the required version and the pip command — for Keras whichever of ``keras`` and
  ``keras_optlab`` is imported first (a fake ``keras`` package in a fresh process), for
  numpy/TensorFlow/Keras Tuner/Python by the same check on a faked version.
"""

import importlib
import os
import pathlib
import re
import subprocess
import sys
import tomllib
import types

import keras
import pytest

from keras_optlab import _versions

pytestmark = pytest.mark.backend_agnostic

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def floors(requirements):
    """{distribution: version} of the ``name>=version`` requirements."""
    found = {}
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", requirement)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def pins():
    """{distribution: version} of ``.ci/minimum.txt``."""
    found = {}
    for line in (ROOT / ".ci" / "minimum.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[name.strip().lower()] = version.strip()
    return found


# --------------------------------------------------------------------------- one set of floors


def test_every_runtime_dependency_has_a_floor_that_is_pinned_and_checked():
    runtime = floors(PYPROJECT["dependencies"])
    assert len(runtime) == len(PYPROJECT["dependencies"]), PYPROJECT["dependencies"]  # every one has a floor
    assert {name: version for name, (_, version) in _versions.MINIMUM.items()} == runtime
    assert {name: pins()[name] for name in runtime} == runtime


def test_the_lab_extra_floors_are_the_pinned_ones():
    lab = floors(PYPROJECT["optional-dependencies"]["lab"])
    assert lab and {name: pins()[name] for name in lab} == lab
    assert set(pins()) == set(floors(PYPROJECT["dependencies"])) | set(lab)  # nothing pinned beyond the floors


def test_requires_python_is_the_checked_floor():
    assert PYPROJECT["requires-python"] == ">=" + ".".join(map(str, _versions.PYTHON))


def test_keras_floor_has_what_the_optimizers_build_with():
    """Keras 3.8-3.9 lack ``Optimizer.add_optimizer_variables``, which every optimizer's
    ``build`` calls: the floor is the first Keras with it."""
    assert _versions.release(_versions.MINIMUM["keras"][1]) == (3, 10, 0)
    assert hasattr(keras.optimizers.Optimizer, "add_optimizer_variables")


def test_make_test_runs_the_minimum_pins():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\btest-min\b", makefile, re.M), "make test must run test-min"
    assert ".ci/minimum.txt" in makefile and re.search(r"^VENV_MIN\s*\?=\s*\.venv-min\s*$", makefile, re.M)


@pytest.mark.skipif(not (ROOT / ".gitignore").exists(), reason="a git checkout's file (not in the sdist)")
def test_the_minimum_virtualenv_is_ignored():
    assert ".venv-min/" in (ROOT / ".gitignore").read_text().split()


def test_the_installed_versions_pass():
    _versions.check_imported()
    _versions.check_python()


# --------------------------------------------------------------------------- the check


@pytest.mark.parametrize(
    "text, expected",
    [("3.10.0", (3, 10, 0)), ("3.15.1.dev2026120703", (3, 15, 1)), ("2.16.0rc1", (2, 16, 0)), ("1.4", (1, 4, 0)),
     ("v2", (2, 0, 0)), ("unknown", None), (None, None)],
)
def test_release(text, expected):
    assert _versions.release(text) == expected


@pytest.mark.parametrize(
    "distribution, old, ok",
    [("keras", "3.9.2", "3.10.0"), ("numpy", "1.26.3", "2.0.0"), ("tensorflow", "2.16.1", "2.21.0"),
     ("keras-tuner", "1.4.5", "1.4.6"), ("tensorboard", "2.15.2", "2.16.2")],
)
def test_below_a_floor_is_an_import_error_naming_both_versions_and_the_command(distribution, old, ok):
    minimum = _versions.MINIMUM[distribution][1]
    with pytest.raises(ImportError) as info:
        _versions.require(distribution, old, where="/site/pkg")
    message = str(info.value)
    assert isinstance(info.value, _versions.DependencyVersionError)
    assert f"requires {distribution}>={minimum}" in message, message
    assert f"{distribution} {old} is installed at /site/pkg" in message, message
    assert f'pip install --upgrade "{distribution}>={minimum}"' in message, message
    _versions.require(distribution, ok)
    _versions.require(distribution, "not-a-version")  # unreadable: let it be


@pytest.mark.parametrize("distribution, old", [("numpy", "1.25.2"), ("tensorflow", "2.15.1")])
def test_an_imported_module_below_its_floor_is_refused(monkeypatch, distribution, old):
    module = _versions.MINIMUM[distribution][0]
    monkeypatch.setitem(sys.modules, module, types.SimpleNamespace(__version__=old, __file__="/x/m/__init__.py"))
    with pytest.raises(ImportError, match=rf"{re.escape(distribution)} {re.escape(old)} is installed at /x/m"):
        _versions.check_imported()


def test_a_blocked_or_absent_module_is_not_checked(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # how tests hide TensorFlow
    monkeypatch.delitem(sys.modules, "keras_tuner", raising=False)
    _versions.check_imported(("tensorflow", "keras-tuner"))


def test_python_below_its_floor_is_refused():
    with pytest.raises(ImportError, match=r"requires Python>=3\.11, but this is Python 3\.10\.13"):
        _versions.check_python((3, 10, 13, "final", 0))
    _versions.check_python((3, 11, 0, "final", 0))


def test_keras_tuner_below_its_floor_refuses_the_tuning_module(monkeypatch):
    """Keras Tuner 1.4.0-1.4.5 fail every trial on Keras 3 ("filename must end in
    .weights.h5"): ``import keras_optlab.tuning`` says so instead."""
    pytest.importorskip("keras_tuner")
    fake = types.ModuleType("keras_tuner")
    fake.__version__ = "1.4.5"
    fake.HyperModel = object  # what the module body subclasses, were it to get that far
    monkeypatch.setitem(sys.modules, "keras_tuner", fake)
    monkeypatch.delitem(sys.modules, "keras_optlab.tuning", raising=False)
    with pytest.raises(ImportError, match=r'keras-tuner 1\.4\.5 is installed.*pip install --upgrade "keras-tuner>=1\.4\.6"'):
        importlib.import_module("keras_optlab.tuning")


# --------------------------------------------------------------------------- a real old Keras, faked


def fake_keras(root, version, dist_info=True):
    """A ``keras`` package that says it is ``version``, first on the path."""
    (root / "keras").mkdir()
    (root / "keras" / "__init__.py").write_text(f"__version__ = {version!r}\ndef version():\n    return __version__\n")
    if dist_info:
        info = root / f"keras-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: keras\nVersion: {version}\n")
    return root


def run(code, path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=path)


REFUSED = 'keras_optlab requires keras>=3.10.0, but keras 3.8.0 is installed at {where}. ' \
          'Upgrade it: pip install --upgrade "keras>=3.10.0"'


@pytest.mark.parametrize("dist_info", [True, False])
@pytest.mark.parametrize(
    "code",
    ["import keras_optlab", "import keras; import keras_optlab", "import keras_optlab; import keras",
     "import keras_optlab; keras_optlab.Adam", "from keras_optlab.optimizers import Adam"],
)
def test_an_old_keras_fails_at_import_whatever_is_imported_first(tmp_path, code, dist_info):
    path = fake_keras(tmp_path, "3.8.0", dist_info=dist_info)
    done = run(
        "import sys\ntry:\n"
        f"    {code}\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error, sep=': ')\n"
        "    sys.exit(3)\n",
        path,
    )
    if not dist_info and code == "import keras_optlab":
        # Without its dist-info the version is known only once Keras is imported.
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 3, (done.stdout, done.stderr)
    where = path / "keras"
    assert done.stdout.strip() == "DependencyVersionError: " + REFUSED.format(where=where), done.stdout


def test_the_dist_info_is_read_without_importing_keras(tmp_path):
    path = fake_keras(tmp_path, "3.8.0")
    (path / "keras" / "__init__.py").write_text("raise SystemExit('keras was imported')\n")
    done = run("import keras_optlab", path)
    assert done.returncode == 1 and "keras 3.8.0 is installed" in done.stderr, (done.returncode, done.stderr)
