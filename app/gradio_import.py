"""Importing Gradio without its stub writer (1.1 s of the app's start on 2 cores).

Every component class Gradio defines at import parses its own source and rewrites the `.pyi`
type stub beside it (gradio/component_meta.py, create_or_modify_pyi): an aid for Gradio's own
development that a server never reads. No setting turns it off, so the app imports Gradio with
that function replaced by one that does nothing. If a later Gradio renames it, nothing is
replaced and the import is only slower.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys

MODULE, WRITER = "gradio.component_meta", "create_or_modify_pyi"


class _WithoutStubWriter(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as usual, then blanks its stub writer before any component uses it."""

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)   # once; the regular finders locate the module
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            if hasattr(module, WRITER):
                setattr(module, WRITER, lambda *args, **kwargs: None)

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writing() -> None:
    """Call before the first `import gradio`; afterwards it changes nothing."""
    if "gradio" not in sys.modules and not any(isinstance(f, _WithoutStubWriter) for f in sys.meta_path):
        sys.meta_path.insert(0, _WithoutStubWriter())
