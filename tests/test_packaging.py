"""The toolkit installs as a package: the wheel holds the code, the bundled model the app needs,
the example clips, and the console scripts."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"mgcma-train": "mgcma.train:main", "mgcma-predict": "mgcma.predict:main",
           "mgcma-evaluate": "mgcma.evaluate:main", "mgcma-prepare": "mgcma.prepare:main",
           "mgcma-app": "app.serve:main", "mgcma-export": "mgcma.export:main",
           "mgcma-ensemble": "mgcma.ensemble:main", "mgcma-stats-head": "mgcma.stats_head:main"}


def test_the_wheel_holds_packages_model_examples_and_scripts(tmp_path):
    import shutil
    source = tmp_path / "source"     # a copy: the build leaves build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "mgcma", "analysis", "app", "checkpoints"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("mgcma-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("mgcma/predict.py", "mgcma/train.py", "analysis/__main__.py", "app/ui.py", "app/serve.py"):
        assert module in names
    bundled = {p.relative_to(ROOT).as_posix() for p in (ROOT / "checkpoints" / "default").rglob("*") if p.is_file()}
    needed = {n for n in bundled if n.endswith((".json", ".safetensors", ".npz")) or "/tokenizer/" in n}
    assert needed and needed <= names, needed - names
    assert {f"app/examples/{p.name}" for p in (ROOT / "app" / "examples").iterdir()} <= names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points
    assert not any(n.startswith(("tests/", "data/", "runs/")) for n in names)


def test_the_app_entry_point_answers_help():
    done = subprocess.run([sys.executable, "-c", "from app.serve import main; main(['--help'])"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--checkpoint" in done.stdout
