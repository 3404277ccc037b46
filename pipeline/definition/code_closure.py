"""Which of this repository's modules a stage's code runs, and a fingerprint of their source.

TFX caches a stage on its inputs and properties, not on code referenced by dotted path (a
Transform's preprocessing_fn, a Trainer's run_fn, an executor class, a Python function
component). So each stage carries a code_fingerprint property: the hash of its entry modules
and everything under components/ and pipeline/ they import, transitively. The import closure is
read statically with `ast` (nothing is imported): `import x.y`, `from x import y`, `from . import
y`, at module level and inside functions. Left out: imports under `if TYPE_CHECKING:` (they never
run), imports inside a module-level `__getattr__` (PEP 562: they run only when someone asks the
module for that attribute, and whoever does imports its module itself; components/__init__.py
has one for Kubeflow), and third-party modules (their versions are pinned by requirements/).

A module is counted with the packages it sits in (their __init__.py runs first). The closure of
each module is computed once per process; the file contents are read on every fingerprint.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from pipeline.config.settings import REPO_ROOT

CODE_PACKAGES = ("components", "pipeline")


def module_file(name: str, root: Path = REPO_ROOT) -> Path | None:
    """The file of a repo module (a package's __init__.py), None for anything else (third-party
    modules, namespace packages without __init__.py, names that are attributes, not modules)."""
    if name.split(".")[0] not in CODE_PACKAGES:
        return None
    path = Path(root, *name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_package(name: str, root: Path) -> bool:
    return Path(root, *name.split(".")).is_dir()


def _with_parents(name: str) -> list[str]:
    """`a.b.c` -> a, a.b, a.b.c: importing a module runs its packages' __init__ first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _lazy_attribute_hook(node: ast.AST, tree: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and \
        node in getattr(tree, "body", ())


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom in the tree, at any depth, except under `if TYPE_CHECKING:` and
    in a module-level __getattr__."""
    stack = [child for child in ast.iter_child_nodes(tree)
             if not _lazy_attribute_hook(child, tree)]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if _type_checking_only(node):
            children = list(node.orelse)
        stack.extend(children)


@functools.lru_cache(maxsize=None)
def direct_imports(name: str, root: Path = REPO_ROOT) -> frozenset[str]:
    """The repo modules `name` imports itself (with their packages), by reading its source."""
    path = module_file(name, root)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:  # relative: from the module's package, one level up per extra dot
                base_parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from a import b`: b is a submodule of a, or a name defined in a.
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names
                                if alias.name != "*" and _is_package(base, root)]
        for target in targets:
            found.update(m for m in _with_parents(target) if module_file(m, root) is not None)
    found.discard(name)
    return frozenset(found)


@functools.lru_cache(maxsize=None)
def closure(*entries: str, root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The entry modules and every repo module they import, transitively, sorted by name.

    An entry that is not a module of this repository is an error: a fingerprint that silently
    leaves a stage's code out would serve stale results."""
    missing = [e for e in entries if module_file(e, root) is None]
    if missing:
        raise ValueError(f"not a module under {', '.join(CODE_PACKAGES)} of {root}: {missing}")
    seen: set[str] = set()
    todo = [m for entry in entries for m in _with_parents(entry) if module_file(m, root)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(direct_imports(name, root) - seen)
    return tuple(sorted(seen))


def fingerprint(*entries: str, root: Path = REPO_ROOT) -> str:
    """Hash of the source of the entries' closure: each module's name and bytes."""
    digest = hashlib.sha256()
    for name in closure(*entries, root=Path(root)):
        digest.update(name.encode() + b"\0" + module_file(name, root).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
