"""Build one Lambda function's artifact, or check every built artifact (`sam build` runs `build`).

    package.py build LOGICAL_ID ARTIFACTS_DIR   (infra/lambda/Makefile, called by `sam build`)
    package.py check [BUILD_DIR]                (lint-infra: sizes and contents, default .aws-sam/build)

Why not SAM's own Python builder: it copies the whole CodeUri (with `CodeUri: .` the repository,
tests, tools, docs, and a used checkout's .stack/ with GBs of Kafka data) into every function and
ships no bytecode. Here each artifact holds exactly:

- the first-party modules its handler can import: the closure of every `import` in the handler's
  module and in the modules it reaches (imports inside functions included: a lazy import is still an
  import at run time), plus the data files of a package that has them (templates/, static/);
- the third-party distributions those modules import, with their dependencies as uv.lock resolves
  them for Lambda (Linux x86_64, CPython 3.13), installed from requirements.txt's hashed wheels;
  a name no runtime distribution provides (prometheus_client: the local app's) is not shipped;
- compiled bytecode (`unchecked-hash` .pyc: Lambda's file system is read-only and a zip keeps no
  exact mtimes, so timestamp-checked .pyc would be recompiled, in memory, at every cold start).

The same inputs give the same files in a clean clone and in a used checkout: nothing is taken from
a directory listing of the checkout except the package directories the imports name.

`check` prints each function's unzipped size and holds it to infra/lambda/contents.toml: a size
budget and an allow-list of first-party paths and distributions per function.
Runs with the lint environment's Python (tools/lint/.venv: CPython 3.13, `packaging`, `yaml`).
"""

from __future__ import annotations

import ast
import compileall
import fcntl
import hashlib
import os
import py_compile
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("common", "functions", "cli")
# Data directories shipped with the package that holds them (read at run time by that package).
DATA_DIRS = ("templates", "static")
# Distributions a shipped one uses without importing them at the top: C accelerators that are
# runtime dependencies for speed (redis-py's reply parser, kafka-python's CRC32C), and boto3,
# which Powertools' Parameters (the secrets) import but leave to the environment to provide.
COMPANIONS = {
    "redis": ["hiredis"],
    "kafka-python": ["crc32c"],
    "aws-lambda-powertools": ["boto3"],
}
# What Lambda's python3.13 runtime is, for uv.lock's markers.
LAMBDA_ENV = {
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.13.0",
    "python_version": "3.13",
    "sys_platform": "linux",
    "os_name": "posix",
    "extra": "",
}


# --- first-party closure -------------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module name an import statement of this file names (absolute, relative resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # for the type checker only
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            # `from package import module` imports a module too
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def first_party_closure(handler_module: str) -> tuple[set[Path], set[str]]:
    """(first-party files, top-level third-party names) reachable from the handler's module."""
    files: set[Path] = set()
    third_party: set[str] = set()
    todo = [handler_module]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        top = name.partition(".")[0]
        if top not in FIRST_PARTY:
            if top and top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
            continue
        path = _module_file(name)
        if path is None:
            continue  # `from package import attribute`: not a module
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
        files.add(path)
        todo.extend(_imports(path, name))
    for path in list(files):
        if path.name == "__init__.py":
            for data in DATA_DIRS:
                folder = path.parent / data
                if folder.is_dir():
                    files.update(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files, third_party


# --- third-party distributions -------------------------------------------------------------------


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        sys.exit("package.py: uv not found (set UV; infra/lambda/build.sh does)")
    return uv


def staged_site() -> Path:
    """requirements.txt installed once, for Lambda's platform, into .stack/lambda/site-<hash>."""
    requirements = (ROOT / "requirements.txt").read_bytes()
    digest = hashlib.sha256(requirements).hexdigest()[:16]
    stack = Path(os.environ.get("STACK_DIR") or ROOT / ".stack")
    site = stack / "lambda" / f"site-{digest}"
    if (site / ".complete").is_file():
        return site
    site.parent.mkdir(parents=True, exist_ok=True)
    with open(site.parent / "stage.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # `sam build --parallel`: one function stages, the others wait
        if not (site / ".complete").is_file():
            _stage(site)
    return site


def _stage(site: Path) -> None:
    partial = site.with_name(site.name + f".tmp{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [
            _uv(), "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--only-binary", ":all:",
            "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.13",
            "--no-compile", "--target", str(partial), "-r", str(ROOT / "requirements.txt"),
        ],
        check=True,
    )  # fmt: skip
    # Compiled once here for all seven functions (the .pyc name their /var/task path).
    _compile(partial)
    (partial / ".complete").touch()
    shutil.rmtree(site, ignore_errors=True)
    partial.rename(site)


def _records(site: Path) -> dict[str, list[str]]:
    """distribution name -> the files its RECORD lists (relative to the site directory)."""
    records: dict[str, list[str]] = {}
    for info in site.glob("*.dist-info"):
        name = canonicalize_name(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        lines = (info / "RECORD").read_text().splitlines()
        records[name] = [line.rsplit(",", 2)[0] for line in lines if line]
    return records


def _lock_graph() -> dict[str, list[tuple[str, list[str], str | None]]]:
    """uv.lock: package -> [(dependency, its extras, marker)], base and optional dependencies
    (an optional group keyed `package[extra]`)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    graph: dict[str, list[tuple[str, list[str], str | None]]] = {}
    for package in lock["package"]:
        name = canonicalize_name(package["name"])

        def deps(entries: list[dict[str, object]]) -> list[tuple[str, list[str], str | None]]:
            return [
                (canonicalize_name(str(d["name"])), list(d.get("extra", [])), d.get("marker"))  # type: ignore[arg-type]
                for d in entries
            ]

        graph[name] = deps(package.get("dependencies", []))
        for extra, entries in package.get("optional-dependencies", {}).items():
            graph[f"{name}[{extra}]"] = deps(entries)
    return graph


def _project_extras() -> dict[str, list[str]]:
    """The extras the project asks of its runtime dependencies (psycopg[binary], ...)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (project,) = [p for p in lock["package"] if p.get("source", {}).get("editable") == "."]
    return {canonicalize_name(d["name"]): list(d.get("extra", [])) for d in project.get("dependencies", [])}


def distribution_closure(roots: Iterable[str]) -> set[str]:
    graph, extras = _lock_graph(), _project_extras()
    wanted: set[str] = set()
    todo = [(root, extras.get(root, [])) for root in roots]
    while todo:
        name, its_extras = todo.pop()
        for key in [name, *(f"{name}[{e}]" for e in its_extras)]:
            if key == name and name in wanted:
                continue
            wanted.add(name)
            for dep, dep_extras, marker in graph.get(key, []):
                if marker and not Marker(marker).evaluate(LAMBDA_ENV):
                    continue
                todo.append((dep, dep_extras))
    return wanted


def third_party_files(site: Path, import_names: set[str]) -> tuple[set[str], list[str]]:
    """(distributions shipped, the files to copy), from the top-level names the code imports."""
    records = _records(site)
    provider: dict[str, str] = {}
    for dist, files in records.items():
        for file in files:
            top = file.split("/", 1)[0].removesuffix(".py")
            if not top.endswith((".dist-info", ".data")) and top not in ("..", "__pycache__"):
                provider.setdefault(top, dist)
    roots = {provider[name] for name in import_names if name in provider}
    roots |= {c for root in list(roots) for c in COMPANIONS.get(root, [])}
    dists = distribution_closure(roots) & set(records)
    # Console scripts (bin/) are for a shell, never imported.
    files = sorted(f for dist in dists for f in records[dist] if not f.startswith(("..", "bin/")))
    return dists, files


# --- build ----------------------------------------------------------------------------------------


def handler_of(logical_id: str) -> str:
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    return str(template["Resources"][logical_id]["Properties"]["Handler"])


def build(logical_id: str, artifacts: Path) -> None:
    handler = handler_of(logical_id)
    files, import_names = first_party_closure(handler.rpartition(".")[0])
    site = staged_site()
    dists, dist_files = third_party_files(site, import_names)
    if artifacts.exists():
        for child in artifacts.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    artifacts.mkdir(parents=True, exist_ok=True)
    for path in sorted(files):
        target = artifacts / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for relative in dist_files:
        source = site / relative
        if source.is_file() and "__pycache__" not in relative:
            _place(source, artifacts / relative)
            if source.suffix == ".py":
                pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
                if pyc.is_file():
                    _place(pyc, artifacts / Path(relative).parent / "__pycache__" / pyc.name)
    _compile(artifacts)  # the first-party files (the distributions' .pyc came from the site)
    shipped = sorted(set(import_names) - {n for n in import_names if not _provided(site, n)})
    missing = sorted(set(import_names) - set(shipped))
    print(
        f"{logical_id}: {len(files)} first-party files, {len(dists)} distributions"
        f" ({', '.join(sorted(dists))}); not shipped (no runtime distribution): {', '.join(missing) or '-'}"
    )


def _place(source: Path, target: Path) -> None:
    """A hard link to the staged file (never written to: no copy of ~70 MB per function), or a copy
    across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _compile(folder: Path) -> None:
    """Bytecode for every .py under `folder` that has none yet: `unchecked-hash` (never compared with
    the source), named by its Lambda path (/var/task/...) for tracebacks."""
    ok = compileall.compile_dir(
        str(folder),
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        stripdir=str(folder),
        prependdir="/var/task",
    )
    if not ok:
        sys.exit(f"package.py: compiling the bytecode in {folder} failed")


def _provided(site: Path, name: str) -> bool:
    return (site / name).is_dir() or (site / f"{name}.py").is_file() or any(site.glob(f"{name}.*.so"))


# --- check ----------------------------------------------------------------------------------------


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check(build_dir: Path) -> int:
    """Sizes and contents of every built function against infra/lambda/contents.toml."""
    policy = tomllib.loads((ROOT / "infra" / "lambda" / "contents.toml").read_text())
    problems: list[str] = []
    print(f"{'function':<22}{'unzipped':>10}{'budget':>9}  {'files':>5}  distributions")
    for logical_id, rules in policy["function"].items():
        folder = build_dir / logical_id
        if not folder.is_dir():
            problems.append(f"{logical_id}: not built ({folder} is missing)")
            continue
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        size, budget = _size(folder), int(rules["budget_mb"]) * 1_000_000
        dists = sorted(
            canonicalize_name(p.name.removesuffix(".dist-info").rsplit("-", 1)[0])
            for p in folder.glob("*.dist-info")
            if p.is_dir()
        )
        print(f"{logical_id:<22}{size / 1e6:>8.1f}MB{budget / 1e6:>7.0f}MB  {len(files):>5}  {len(dists)}")
        if size > budget:
            problems.append(
                f"{logical_id}: {size / 1e6:.1f} MB unzipped, over its budget of {budget / 1e6:.0f} MB"
            )
        allowed_dists = set(policy["shared"]["distributions"]) | set(rules.get("distributions", []))
        for dist in set(dists) - allowed_dists:
            problems.append(f"{logical_id}: distribution {dist} is not on its allow-list")
        for dist in set(rules.get("distributions", [])) - set(dists):
            problems.append(f"{logical_id}: distribution {dist} is on its allow-list but missing")
        dist_tops = set()
        for info in folder.glob("*.dist-info"):
            for line in (info / "RECORD").read_text().splitlines():
                dist_tops.add(line.split("/", 1)[0].split(",", 1)[0].removesuffix(".py"))
        allowed_paths = [*policy["shared"]["paths"], *rules.get("paths", [])]
        forbidden = [*policy["shared"]["forbidden"], *rules.get("forbidden", [])]
        sources = 0
        for file in files:
            top = file.split("/", 1)[0].removesuffix(".py")
            if any(fnmatch(file, pattern) for pattern in forbidden):
                problems.append(f"{logical_id}: {file} must not be shipped")
            if top in dist_tops or top.endswith(".dist-info") or top.split(".")[0] in dist_tops:
                continue
            if not any(fnmatch(file, pattern) for pattern in allowed_paths):
                problems.append(f"{logical_id}: {file} is not on its allow-list")
            if file.endswith(".py"):
                sources += 1
        for file in files:
            if file.endswith(".py"):
                stem = Path(file)
                pyc = stem.parent / "__pycache__" / f"{stem.stem}.cpython-313.pyc"
                if pyc.as_posix() not in files:
                    problems.append(f"{logical_id}: {file} has no compiled bytecode")
                    break
        if sources == 0:
            problems.append(f"{logical_id}: no first-party code")
    for problem in problems:
        print(f"package.py check: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "build":
        build(argv[1], Path(argv[2]).resolve())
        return 0
    if argv and argv[0] == "check" and len(argv) <= 2:
        return check(Path(argv[1]) if len(argv) == 2 else ROOT / ".aws-sam" / "build")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
