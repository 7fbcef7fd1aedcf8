"""Stored notebooks are in JupyterLab's own format; the explorer's text form; the learner's install.

The browser test (tests/test_browser.py) shows in JupyterLab itself that trusting a stored
notebook saves it unchanged; these tests check the same property cheaply for every stored
notebook (lectures, solutions, exercises) and pin the normaliser's rules.
"""

import copy
import re
from pathlib import Path

import nbformat
import pytest

from course_lib import notebook_format as nf
from course_lib.widgets import explorer, log_slider
from notebook_slice import EXPLORER_TEXT, needed_cells

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb"))


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_notebook_is_in_jupyterlab_format(path):
    text = path.read_text(encoding="utf-8")
    assert nf.canonical_text(text) == text, (
        f"{path.name} is not stored as JupyterLab saves it (trusting it would modify it): "
        f"python -m course_lib.notebook_format {path.relative_to(ROOT)}")
    nb = nbformat.reads(text, as_version=4)
    assert "widgets" not in nb.metadata  # no stale widget state


def stream(text, name="stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


@pytest.mark.parametrize("index, text, buffer, expected", [
    (0, "plain", "", "plain"),
    (0, "10%\r20%\r30%\n", "", "30%\n"),        # a \r progress bar keeps its last state
    (0, "abc\rX\n", "", "Xbc\n"),               # \r overwrites, it does not erase
    (0, "ab\bc", "", "ac"),                      # backspace deletes one character
    (0, "a\n\bb", "", "a\nb"),                   # ... but never a newline
    (2, "c\n", "ab", "abc\n"),                   # appending at the cursor
    (0, "new", "old line\n", "new line\n"),      # the cursor at 0 overwrites
])
def test_stream_text_is_processed_like_a_terminal(index, text, buffer, expected):
    assert nf.process_stream_text(index, text, buffer)[0] == expected


def make_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["course"] = {"scale": 10.0, "ratio": 0.5}
    cell = nbformat.v4.new_code_cell("print(...)", execution_count=1)
    cell.outputs = [stream("epoch 1\n"), stream("epoch 2\n"), stream("warn\n", "stderr"),
                    stream("epoch 3\n"), nbformat.v4.new_output("display_data", data={"text/plain": "fig"}),
                    stream("step 1\rstep 2\n"),
                    nbformat.v4.new_output("execute_result", execution_count=1, data={
                        nf.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                        "text/plain": "[interactive explorer: lr. ...]"})]
    bare = nbformat.v4.new_code_cell("w", execution_count=2)
    bare.outputs = [nbformat.v4.new_output("display_data", data={nf.WIDGET_VIEW: {"model_id": "x"}})]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell, bare]
    return nb


def test_normalize_applies_jupyterlabs_rewrites_and_drops_widget_state():
    nb = make_notebook()
    before = copy.deepcopy(nb)
    out = nf.normalize(nb)
    assert nb == before  # the input is not modified
    assert "widgets" not in out.metadata
    assert out.metadata.course == {"scale": 10, "ratio": 0.5} and isinstance(out.metadata.course.scale, int)
    outputs = out.cells[1].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in outputs[:5]] == [
        ("stream", "stdout", "epoch 1\nepoch 2\n"),   # merged
        ("stream", "stderr", "warn\n"),               # another stream name: not merged
        ("stream", "stdout", "epoch 3\n"),
        ("display_data", None, None),
        ("stream", "stdout", "step 2\n"),            # \r applied
    ]
    assert dict(outputs[5].data) == {"text/plain": "[interactive explorer: lr. ...]"}
    assert nf.WIDGET_VIEW in out.cells[2].outputs[0].data   # no text fallback: kept
    assert nf.normalize(out) == out                          # idempotent


def test_a_line_overwritten_by_a_shorter_one_is_refused():
    # JupyterLab stores "Xbc", strict nbval reads a fresh run as "X": no stored text passes both
    nb = nbformat.v4.new_notebook(cells=[code("print(...)", [stream("abc\rX\n")])])
    with pytest.raises(ValueError, match="shorter"):
        nf.normalize(nb)
    ok = nbformat.v4.new_notebook(cells=[code("print(...)", [stream("10%\r"), stream("100%\n")])])
    assert nf.normalize(ok).cells[0].outputs[0].text == "100%\n"   # same length: both read "100%"


def test_command_checks_and_rewrites(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(), path)
    assert nf.main(["--check", str(tmp_path)]) == 1
    assert "not canonical" in capsys.readouterr().out
    assert nf.main([str(path)]) == 0
    assert nf.main(["--check", str(path)]) == 0
    with pytest.raises(SystemExit):
        nf.main([str(tmp_path / "missing.ipynb")])


def test_explorer_shows_a_useful_text_where_no_kernel_runs_it():
    import matplotlib.pyplot as plt

    def update(lr):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, lr])
        return fig

    box = explorer(update, {"lr": log_slider("learning rate", 0.1, 1e-3, 1.0)})
    bundle = box._repr_mimebundle_()
    assert nf.WIDGET_VIEW in bundle
    text = bundle["text/plain"]
    assert text.startswith(EXPLORER_TEXT) and "learning rate" in text and "VBox" not in text
    assert "course-explorer" in box._dom_classes
    assert box.children[0].layout.flex_flow == "row wrap"          # controls wrap onto rows
    assert box.children[0].children[0].layout.min_width == "300px"
    assert box.layout.align_items == "flex-start"                   # the image is not stretched


def code(source, outputs=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = list(outputs)
    return cell


def test_needed_cells_follow_names_the_explorer_reads():
    cells = [
        nbformat.v4.new_markdown_cell("# title"),
        code("import numpy as np\nimport matplotlib.pyplot as plt\nuse_course_style()"),   # 1 setup
        code("data = [1, 2]\nscale = 3"),                                                 # 2 data, scale
        code("slow = sum(i for i in range(10**6))\nfig, ax = plt.subplots()\nplt.show()"),  # 3 unrelated
        code("data.append(4)"),                                                           # 4 mutates data
        code("%timeit np.ones(3)"),                                                       # 5 magic: unrelated
        code("def draw(lr):\n    fig, ax = plt.subplots()\n    ax.plot(np.array(data) * lr * scale)\n"
             "    return fig"),                                                           # 6 reads data, scale
        code("data = [5]"),                                                               # 7 rebinds data
        code("def draw2(k):\n    return draw(k * 2)"),                                    # 8
        code("unparsable ( syntax"),                                                      # 9 always run
        code("explorer(draw2, {'k': slider})"),                                           # 10 explorer
        code("x = 1", [nbformat.v4.new_output("execute_result", data={
            "text/plain": EXPLORER_TEXT + " k. ...]"})]),                                 # 11 stored explorer
    ]
    needed, explorers = needed_cells(cells)
    assert explorers == [10, 11]
    # draw2 -> draw, which reads data and scale when called: every cell that binds or changes them
    # before the explorer (2, 4, 7); np and plt from 1. Not 3 or 5. `slider` is defined nowhere.
    assert needed == [1, 2, 4, 6, 7, 8, 9, 10, 11]
    cells[10] = code("explorer(lambda k: k * scale, {'k': slider})")   # reads only scale (cell 2)
    assert needed_cells(cells)[0] == [1, 2, 9, 10, 11]


def test_learner_install_brings_no_instructor_tools():
    """make lab installs the course alone; nbgrader (instructor menus, "Validate") comes with [test]."""
    tomllib = pytest.importorskip("tomllib")
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "nbgrader" in {canonicalize_name(Requirement(r).name)
                          for r in project["optional-dependencies"]["test"]}
    # the learner's dependency tree, as installed here: nbgrader must not be in it
    seen, todo = set(), [Requirement(r) for r in project["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            continue
    assert "jupyterlab" in seen and "nbgrader" not in seen, "a learner's make lab would install nbgrader"
    # make lab depends on the course-only install, whose pip line has no extra
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: setup$", makefile, re.M)
    stamp_recipe = makefile.split("$(STAMP): pyproject.toml constraints.txt", 1)[1].split("\n\n", 1)[0]
    assert "-e ." in stamp_recipe and "[test]" not in stamp_recipe
