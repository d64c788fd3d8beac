"""What `pip install` gets (issue 22, item 11): the sdist and the wheel carry the Apache-2.0
LICENSE and `py.typed`; the sdist carries the whole test suite (and the examples,
benchmarks and searches it runs), and its tests run from the unpacked sdist."""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NEEDED_BY_TESTS = ("tests", "examples", "benchmarks", "tuning", ".ci")  # .ci: the minimum pins (test_versions)


def _files_under(folder):
    for path in (ROOT / folder).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".so"):
            yield path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    source = build / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv*", ".git", "build", "dist", "*.egg-info", "__pycache__", "runs", ".pytest_cache", ".hypothesis"))
    names = []
    for hook in ("build_sdist", "build_wheel"):
        # setuptools' PEP 517 hooks, one process each (as a build frontend calls them),
        # in a copy of the tree so the checkout gets no build/ or egg-info litter.
        code = f"import sys; from setuptools import build_meta; print('BUILT', build_meta.{hook}(sys.argv[1]))"
        done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        names.append(done.stdout.split("BUILT")[-1].strip())
    sdist_name, wheel_name = names
    return out / sdist_name, out / wheel_name


def test_license_and_typing_marker_in_both(distributions):
    sdist, wheel = distributions
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"LICENSE", "keras_optlab/py.typed", "pyproject.toml"} <= names
    with zipfile.ZipFile(wheel) as whl:
        wheel_names = set(whl.namelist())
    assert "keras_optlab/py.typed" in wheel_names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names), sorted(wheel_names)[:20]
    assert "keras_optlab/accel/cpu/book_kernels.cc" in wheel_names


def test_sdist_carries_every_file_the_tests_need(distributions):
    sdist, _ = distributions
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = {name for folder in NEEDED_BY_TESTS for name in _files_under(folder) if not name.startswith("benchmarks/results/")}
    missing = sorted(needed - names)
    assert not missing, missing[:20]


@pytest.mark.slow
def test_tests_run_from_the_unpacked_sdist(distributions, tmp_path):
    sdist, _ = distributions
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    unpacked = next(tmp_path.iterdir())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(unpacked)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_imports.py", "tests/initializers/test_validation.py"],
        cwd=unpacked, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    # The package under test is the sdist's own copy.
    check = subprocess.run([sys.executable, "-c", "import keras_optlab; print(keras_optlab.__file__)"], cwd=unpacked,
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.stdout.strip().startswith(str(unpacked)), check.stdout
