"""The house rules, checked on the source: stages import only downwards, no circle of
imports, no long function outside the Taichi kernels, a README of one screen."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "slingbag"

#: Each top-level room of the package and its stage, lowest first: a module may import
#: from its own stage or lower ones, never from a higher one.
STAGES = {
    "_version": 0,
    "errors": 0,
    "backend": 0,
    "kernels": 1,
    "core": 2,
    "io": 3,
    "model": 4,
    "phantoms": 5,
    "baselines": 6,
    "fit": 7,
    "report": 8,
    "series": 9,
    "benchmark": 10,
    "commands": 11,
    "cli": 11,
    "__main__": 11,
    "__init__": 11,
}
#: What may stand at the package root beside the stage folders: the public face.
ROOT_MODULES = {"__init__", "__main__", "_version", "backend", "cli", "errors"}
MAX_LINES = 80
README_LINES = 250


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known) -> set[str]:
    """Every slingbag module ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name and m != "slingbag"}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _stage(module: str) -> int:
    room = module.split(".")[1] if "." in module else "__init__"
    return STAGES[room]


def test_every_room_has_a_stage_and_the_root_holds_only_the_public_face():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= ROOT_MODULES, modules - ROOT_MODULES
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(STAGES), folders - set(STAGES)


def test_no_import_goes_up_a_stage():
    upward = [f"{a} -> {b}" for a, deps in _graph().items() for b in deps if _stage(b) > _stage(a)]
    assert not upward, upward


def test_no_circle_of_imports():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, circles


def _function_lengths(folder: Path) -> dict[str, int]:
    lengths = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if any(ast.unparse(d).startswith("ti.") for d in node.decorator_list):
                continue  # Taichi kernels and funcs: one kernel is one launch
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            lengths[where] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_function_over_80_lines_outside_the_kernels():
    for folder in (PACKAGE, ROOT / "experiments", ROOT / "docs" / "examples"):
        if not folder.exists():
            continue
        long = {k: n for k, n in _function_lengths(folder).items() if n > MAX_LINES}
        assert not long, long


def test_the_fit_iteration_stays_short():
    lengths = _function_lengths(PACKAGE / "fit")
    (iterate,) = [n for k, n in lengths.items() if k.endswith(" iterate")]
    assert iterate <= 60


def test_the_detector_finds_what_it_looks_for(tmp_path):
    # The checks above pass on an empty world too: show they see a circle, an upward
    # import and a long function when there is one.
    pkg = tmp_path / "slingbag"
    (pkg / "core").mkdir(parents=True)
    (pkg / "fit").mkdir()
    (pkg / "core" / "a.py").write_text("from ..fit.b import x\n")
    (pkg / "fit" / "b.py").write_text(
        "from ..core.a import y\n\ndef f():\n" + "    pass\n" * MAX_LINES
    )
    global ROOT, PACKAGE
    saved = ROOT, PACKAGE
    ROOT, PACKAGE = tmp_path, pkg
    try:
        graph = _graph()
        assert graph["slingbag.core.a"] == {"slingbag.fit.b"}
        assert graph["slingbag.fit.b"] == {"slingbag.core.a"}
        assert _stage("slingbag.fit.b") > _stage("slingbag.core.a")
        assert max(_function_lengths(pkg).values()) == MAX_LINES + 1
    finally:
        ROOT, PACKAGE = saved


def test_readme_fits_one_screen_of_chapters():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, len(lines)


def test_every_folder_of_modules_is_a_package():
    # setuptools' find_packages leaves out a folder without __init__.py: the wheel would
    # lack it while an editable install still works.
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    missing = [str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()]
    assert not missing, missing
