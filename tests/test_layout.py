"""The house's shape: no import cycle between the project's modules (imports inside functions
counted), and no module too long to read."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repository's folders and the names they import as (pyproject's package-dir)
PACKAGES = {"mgcma": "mgcma", "app": "mgcma.app", "analysis": "mgcma.analysis", "benchmarks": "benchmarks"}
MAX_LINES = 450


def module_files() -> dict[str, Path]:
    files = {}
    for folder, name in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([name, *parts])] = path
    return files


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Every project module that `module` imports, at any depth of its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            for folder, mapped in PACKAGES.items():   # `import analysis.x` from a checkout is mgcma.analysis.x
                if name == folder or name.startswith(folder + "."):
                    name = mapped + name[len(folder):]
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {m: imports_of(m, p, set(files)) for m, p in files.items()}


def test_no_import_cycle_even_through_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_is_too_long_to_read():
    long = {m: n for m, p in module_files().items() if not m.startswith("benchmarks")
            and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_reading_records_and_corpora_does_not_import_pytorch():
    import subprocess
    import sys
    code = ("import sys, mgcma.data.records, mgcma.data.corpora, mgcma.data.augment, mgcma.config, mgcma.audio; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
