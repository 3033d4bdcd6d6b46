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


# what each layer of mgcma/ may import besides itself: nothing above it
MAY_IMPORT = {
    "encoders": {"mgcma.audio", "mgcma.config"},
    "data": {"mgcma.audio", "mgcma.config"},
    "infer": {"mgcma.audio", "mgcma.config", "mgcma.calibration", "mgcma.metrics", "mgcma.model", "mgcma.losses",
              "mgcma.checkpoint", "encoders", "data"},
    "training": {"mgcma.audio", "mgcma.config", "mgcma.calibration", "mgcma.metrics", "mgcma.model", "mgcma.losses",
                 "mgcma.checkpoint", "encoders", "data", "infer"},
}


def layer_of(module: str) -> str:
    """"infer" for mgcma.infer and every module in it; any other module is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else module


def commands(files: dict[str, Path]) -> set[str]:
    """The command modules: mgcma's top-level modules that define main()."""
    return {m for m, path in files.items()
            if m.startswith("mgcma.") and m.count(".") == 1 and "\ndef main(" in path.read_text()}


def test_each_layer_imports_only_the_layers_below_it():
    wrong = {}
    for module, imported in import_graph().items():
        layer = layer_of(module)
        if layer not in MAY_IMPORT:
            continue
        above = sorted(m for m in imported if layer_of(m) != layer and layer_of(m) not in MAY_IMPORT[layer])
        if above:
            wrong[module] = above
    assert wrong == {}


def test_the_library_imports_no_command_and_its_own_modules_at_the_top():
    """Commands import the library, never the other way; an import inside a function hides a
    dependency (or a cycle) from whoever reads the top of the file."""
    files = module_files()
    inside = {}
    for module, path in files.items():
        if not module.startswith("mgcma.") or module.startswith(("mgcma.app", "mgcma.analysis")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.level or (inner.module or "").startswith("mgcma")):
                        inside.setdefault(module, []).append(inner.lineno)
    assert inside == {}
    graph, command = import_graph(), commands(files)
    assert "mgcma.predict" in command and "mgcma.model" not in command
    library = [m for m in files if m.startswith("mgcma.") and m not in command
               and not m.startswith(("mgcma.app", "mgcma.analysis"))]
    assert {m: sorted(graph[m] & command) for m in library if graph[m] & command} == {}
