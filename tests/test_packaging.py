"""The toolkit installs as a package: the wheel holds the code, the bundled model the app needs,
the example clips, and the console scripts."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"mgcma-train": "mgcma.train:main", "mgcma-predict": "mgcma.predict:main",
           "mgcma-evaluate": "mgcma.evaluate:main", "mgcma-prepare": "mgcma.prepare:main",
           "mgcma-app": "mgcma.app.serve:main", "mgcma-analysis": "mgcma.analysis.__main__:main",
           "mgcma-export": "mgcma.export:main",
           "mgcma-ensemble": "mgcma.ensemble:main", "mgcma-stats-head": "mgcma.stats_head:main"}


def build_wheel(tmp_path: Path) -> Path:
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
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_installs_one_name_mgcma_with_the_model_examples_and_scripts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {n.split("/")[0] for n in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"mgcma"}, top_level   # no app, analysis, ...
    for module in ("mgcma/predict.py", "mgcma/train.py", "mgcma/training/loop.py", "mgcma/analysis/__main__.py", "mgcma/app/ui.py", "mgcma/app/serve.py"):
        assert module in names
    subpackages = {f"mgcma/{p.parent.relative_to(ROOT / 'mgcma').as_posix()}/__init__.py"
                   for p in (ROOT / "mgcma").rglob("__init__.py") if p.parent != ROOT / "mgcma"}
    assert subpackages <= names, subpackages - names     # a new subpackage of mgcma/ is in pyproject's list
    bundled = {"mgcma/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "checkpoints" / "default").rglob("*") if p.is_file()}
    needed = {n for n in bundled if n.endswith((".json", ".safetensors", ".npz")) or "/tokenizer/" in n}
    assert needed and needed <= names, needed - names
    assert {f"mgcma/app/examples/{p.name}" for p in (ROOT / "app" / "examples").iterdir()} <= names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points
    assert not any(n.startswith(("tests/", "data/", "runs/")) for n in names)


@pytest.mark.slow
def test_the_installed_wheel_answers_from_outside_the_checkout_with_its_bundled_model(wheel, tmp_path):
    """Installed (here into a folder of its own, its dependencies those of this environment), run
    from elsewhere: mgcma-predict finds the model inside the package, with no path given."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    clip = ROOT / "app" / "examples" / "ravdess-sad-actor23.flac"
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run([str(site / "bin" / "mgcma-predict"), "--audio", str(clip), "--asr", "none", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == "sad"
    # every module of mgcma it imports comes from the wheel (this environment's editable install of
    # the checkout would otherwise fill in what the wheel lacks)
    code = ("import sys, mgcma.predict as p, mgcma.app.ui, mgcma.train, mgcma.analysis.__main__; print(p.DEFAULT_CHECKPOINT); "
            "print(*(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'mgcma' and getattr(m, '__file__', None)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    where = done.stdout.split()
    assert done.returncode == 0 and len(where) > 10, done.stderr
    assert [w for w in where if not Path(w).is_relative_to(site / "mgcma")] == []


def test_the_app_entry_point_answers_help():
    done = subprocess.run([sys.executable, "-c", "from mgcma.app.serve import main; main(['--help'])"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--checkpoint" in done.stdout
