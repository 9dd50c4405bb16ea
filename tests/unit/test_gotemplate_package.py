"""berth.gotemplate as a package: the public names, the builtin table against the names the
parser accepts, and which modules a template loads (the CLI's start-up path pays only for
what a template uses)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from berth.gotemplate import NO_VALUE, Template, TemplateError, render
from berth.gotemplate.funcs import BUILTINS
from berth.gotemplate.parser import BUILTIN_NAMES


def test_public_names() -> None:
    assert render("{{.A}}", {"A": 1}) == "1"
    assert Template("{{.B}}").execute({}) == "<no value>"
    assert repr(NO_VALUE) == "<no value>"
    with pytest.raises(TemplateError, match=r'^template: :1: function "nope" not defined$'):
        Template("{{nope}}")


def test_builtin_names_match_the_table() -> None:
    assert BUILTIN_NAMES == set(BUILTINS)
    assert all(name == spec.name for name, spec in BUILTINS.items())


def _loaded_after(code: str) -> set[str]:
    prefix = "berth.gotemplate."
    script = f"import sys\n{code}\nprint(' '.join(m for m in sys.modules if m.startswith({prefix!r})))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return {name.removeprefix(prefix) for name in out.split()}


@pytest.mark.parametrize(("code", "loaded"), [
    ("import berth.gotemplate", set()),
    ("from berth.gotemplate import Template; Template('{{.A}}')", {"lexer", "parser"}),
    ("from berth.gotemplate import render; render('table {{.A}}\\t{{.B}}\\t{{.C}}', {'A': 'x', 'B': 1, 'C': True})",
     {"lexer", "parser", "executor"}),
    ("from berth.gotemplate import render; render('{{.A}}', {'A': 1.5})", {"lexer", "parser", "executor", "fmt", "strconv"}),
    ("from berth.gotemplate import render; render('{{join .A \",\"}}', {'A': ['x']})",
     {"lexer", "parser", "executor", "funcs", "strconv"}),
    ("from berth.gotemplate import render; render('{{json .}}', {'A': 'x'})",
     {"lexer", "parser", "executor", "funcs", "gojson", "strconv"}),
    ("from berth.gotemplate import render; render('{{printf \"%d\" 1}}', 0)",
     {"lexer", "parser", "executor", "funcs", "fmt", "strconv"}),
])
def test_modules_load_on_first_use(code: str, loaded: set[str]) -> None:
    assert _loaded_after(code) == loaded
