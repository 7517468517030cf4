"""Dependencies are locked, and what each environment gets is what it needs.

pyproject.toml is the single source; uv.lock pins everything with hashes; requirements.txt (what
`sam build` installs into the Lambda functions) is generated from the lock and holds the runtime
alone; the project is installable, with its console script and its migrations; the suite runs on
the Lambda runtime's Python.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LINT_PYPROJECT = tomllib.loads((ROOT / "tools" / "lint" / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
REQUIREMENTS = ROOT / "requirements.txt"
UV = Path(sys.executable).parent / "uv"  # the dev group's uv, the same version stack.sh bootstraps

# Never in a Lambda package: the local app's own dependencies, test, type-check, lint and bench tools.
NOT_IN_LAMBDA = {
    "uvicorn": "uvicorn",
    "prometheus-client": "prometheus_client",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
    "moto": "moto",
    "httpx": "httpx",
    "schemathesis": "schemathesis",
    "playwright": "playwright",
    "mypy": "mypy",
    "ruff": "ruff",
    "matplotlib": "matplotlib",
    "cfn-lint": "cfnlint",
    "aws-sam-translator": "samtranslator",
    "check-jsonschema": "check_jsonschema",
    "aws-sam-cli": "samcli",
    "awslambdaric": "awslambdaric",
    "uv": "uv",
}


def _pinned(requirements: list[str]) -> dict[str, str]:
    """name -> version of `name==version` requirements (extras and markers dropped)."""
    pins: dict[str, str] = {}
    for line in requirements:
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: pin exact versions, the lock does the rest"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _requirements_txt() -> dict[str, str]:
    """name -> version of every package requirements.txt installs."""
    text = REQUIREMENTS.read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, flags=re.M)
    }


def _run(*argv: str | Path, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs
    )


# ------------------------------------------------------------------------------------ the locks


def test_locks_and_the_files_made_from_them_are_up_to_date() -> None:
    """uv.lock and tools/lint/uv.lock match their pyproject.toml; requirements.txt and the uv pin
    are what `make lock` would write now (offline: compared with the locks, not PyPI)."""
    done = _run("bash", ROOT / "infra" / "scripts" / "lock.sh", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_requirements_txt_is_the_runtime_with_hashes_and_nothing_else() -> None:
    installed = _requirements_txt()
    runtime = _pinned(PYPROJECT["project"]["dependencies"])
    for name, version in runtime.items():
        assert installed.get(name) == version, f"{name}=={version} missing from requirements.txt"
    assert not set(installed) & set(NOT_IN_LAMBDA), "a tool or a local-app package in requirements.txt"
    # Every requirement carries hashes (pip then checks every one of them: hash-checking mode).
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", REQUIREMENTS.read_text()) if not b.startswith("#")]
    assert len(blocks) == len(installed)
    assert all("--hash=sha256:" in block for block in blocks)
    # ...and is exactly what the lock resolves for the runtime (no group leaks in).
    locked = {p["name"]: p["version"] for p in LOCK["package"] if p.get("source", {}).get("registry")}
    assert all(locked[name] == version for name, version in installed.items())


def test_lint_tools_do_not_constrain_the_runtime() -> None:
    """aws-sam-translator pins pydantic: it and cfn-lint live in tools/lint's own lock, never here."""
    locked = {p["name"] for p in LOCK["package"]}
    assert not locked & {"cfn-lint", "aws-sam-translator", "check-jsonschema"}
    lint = _pinned(LINT_PYPROJECT["project"]["dependencies"])
    assert set(lint) == {"cfn-lint", "aws-sam-translator", "check-jsonschema", "aws-sam-cli"}
    lint_lock = tomllib.loads((ROOT / "tools" / "lint" / "uv.lock").read_text())
    lint_locked = {p["name"]: p["version"] for p in lint_lock["package"]}
    assert lint_locked["cfn-lint"] == lint["cfn-lint"]


def test_one_uv_version_everywhere() -> None:
    dev = _pinned(PYPROJECT["dependency-groups"]["dev"])["uv"]
    assert PYPROJECT["tool"]["uv"]["required-version"] == f"=={dev}"
    assert LINT_PYPROJECT["tool"]["uv"]["required-version"] == f"=={dev}"
    bootstrap = (ROOT / "tools" / "uv" / "requirements.txt").read_text()
    assert re.search(rf"^uv=={re.escape(dev)} \\$", bootstrap, flags=re.M)
    done = _run(UV, "--version")
    assert done.stdout.split()[1] == dev


def test_groups_split_the_local_app_and_the_tools_from_the_runtime() -> None:
    groups = PYPROJECT["dependency-groups"]
    local = _pinned(groups["local"])
    assert set(local) == {"uvicorn", "prometheus-client"}
    assert PYPROJECT["tool"]["uv"]["default-groups"] == ["local", "dev"]
    runtime = _pinned(PYPROJECT["project"]["dependencies"])
    assert not set(runtime) & set(NOT_IN_LAMBDA)


# -------------------------------------------------------------------- wheels for the Lambda runtime


def _lambda_tags() -> set[Tag]:
    """What pip accepts on python3.13 in Lambda (Amazon Linux 2023: glibc 2.34), x86_64."""
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(34, 16, -1)] + ["manylinux2014_x86_64"]
    return set(cpython_tags((3, 13), platforms=platforms)) | set(
        compatible_tags((3, 13), interpreter="cp313", platforms=platforms)
    )


def test_every_runtime_package_has_a_wheel_for_the_lambda_runtime() -> None:
    """`sam build` (pip) gets a ready wheel for each: no compiler, no sdist built on the way."""
    tags = _lambda_tags()
    packages: dict[str, Any] = {canonicalize_name(p["name"]): p for p in LOCK["package"]}
    missing = []
    for name, version in _requirements_txt().items():
        package = packages[name]
        assert package["version"] == version
        wheel_tags: set[Tag] = set()
        for wheel in package.get("wheels", []):
            wheel_tags |= parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3]
        if not wheel_tags & tags:
            missing.append(f"{name}=={version}")
    assert missing == []


# --------------------------------------------------------------------------- the project itself


def test_the_project_builds_a_wheel_with_its_packages_migrations_and_console_script(tmp_path) -> None:
    done = _run(UV, "build", "--quiet", "--wheel", "--out-dir", tmp_path, "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("warehouse_stock-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = sorted(p.name for p in (ROOT / "common" / "migrations").glob("*.sql"))
    assert migrations
    for migration in migrations:
        assert f"common/migrations/{migration}" in names
    for module in ("common/__init__.py", "functions/__init__.py", "cli/__init__.py", "cli/main.py"):
        assert module in names
    assert not [n for n in names if n.startswith(("tests/", "tools/"))]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "warehouse-stock = cli.main:main" in scripts


def test_the_console_script_is_installed_in_the_venv() -> None:
    script = Path(sys.executable).parent / "warehouse-stock"
    assert script.is_file(), "uv sync installs the project (editable) with its console script"
    done = _run(script, "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: warehouse-stock")


def test_the_suite_runs_on_the_lambda_runtime_python() -> None:
    runtime = re.search(r"^\s+Runtime: (python3\.\d+)\s*$", (ROOT / "template.yaml").read_text(), re.M)
    assert runtime, "no Runtime in template.yaml"
    major, minor = sys.version_info[:2]
    assert runtime.group(1) == f"python{major}.{minor}"
    assert PYPROJECT["project"]["requires-python"] == f">={major}.{minor}"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"


# ------------------------------------------------------------- a Lambda package, built and imported

HANDLERS = sorted(f"functions.{p.parent.name}.handler" for p in (ROOT / "functions").glob("*/handler.py"))

# Run with `python -S` in the artifact: stdlib + requirements.txt + the repository's code, like
# /var/task in Lambda. Prints, per handler module, None or where its import failed.
PROBE = """
import importlib, importlib.util, json, sys, traceback
root = sys.argv[1]
absent = {dist: importlib.util.find_spec(mod) is None for dist, mod in json.loads(sys.argv[2]).items()}
imports = {}
for name in sys.argv[3:]:
    try:
        importlib.import_module(name)
        imports[name] = None
    except Exception as exc:
        frames = [f.filename for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(root)]
        imports[name] = {
            "error": f"{type(exc).__name__}: {exc}",
            "missing": getattr(exc, "name", None),
            "where": frames[-1][len(root) + 1:] if frames else None,
        }
print(json.dumps({"absent": absent, "imports": imports}))
"""


@pytest.fixture(scope="module")
def lambda_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """requirements.txt installed into a directory, as `sam build` does (wheels only, hashes checked)."""
    target = tmp_path_factory.mktemp("lambda-artifact")
    done = _run(
        UV, "pip", "install", "--quiet", "--python", sys.executable, "--target", target,
        "--only-binary", ":all:", "--require-hashes", "-r", REQUIREMENTS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


def test_a_lambda_package_has_the_runtime_dependencies_only(lambda_artifact) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    env = {"PYTHONPATH": f"{lambda_artifact}:{ROOT}", "AWS_DEFAULT_REGION": "eu-central-1"}
    done = _run(base, "-S", "-c", PROBE, ROOT, json.dumps(NOT_IN_LAMBDA), *HANDLERS, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert [dist for dist, gone in probe["absent"].items() if not gone] == []

    failed = {name: why for name, why in probe["imports"].items() if why}
    assert failed == {}
