"""Store notebooks exactly as JupyterLab 4 saves them, without stale widget state.

Why: a fresh clone's notebooks are untrusted. Trusting one in JupyterLab re-saves it, and
opening one and pressing Ctrl+S does too. If the stored file differs from what JupyterLab
writes, the learner is left with modified files in git before having changed anything.
Measured with JupyterLab 4.6 (the browser test checks it), a save rewrites a notebook stored
by ``nbconvert --execute`` in two ways, which this module applies ahead of time:

- consecutive ``stream`` outputs of the same name (stdout, stderr) become one output, with
  carriage returns and backspaces applied as JupyterLab's output area applies them
  (a ``\\r`` progress bar keeps only its last state);
- JSON numbers pass through JavaScript, so an integral float is written as an integer
  (``10.0`` -> ``10``).

And it drops saved ipywidgets state, which ``nbconvert --execute`` stores but which shows
learners either raw text (``VBox(children=...``, in an untrusted notebook) or dead controls
that move without redrawing anything (in a trusted one without a kernel):

- the notebook-level ``metadata.widgets`` is removed;
- an output's ``application/vnd.jupyter.widget-view+json`` entry is removed when the output
  has a text fallback; the course's explorers (:func:`course_lib.widgets.explorer`) give a
  one-line text that says what the explorer is and how to use it, and the cell above each
  explorer shows its default view as a static figure.

nbval ignores widget views, so strict nbval still compares the stored text with a fresh run.
Strict nbval reads ``\r`` differently from JupyterLab (it drops a line's text up to a ``\r``;
JupyterLab overwrites it, keeping the tail of a longer old line) and ignores ``\b``: where the two
would disagree, no stored form satisfies both, and :func:`normalize` refuses with the cell named
(the command exits 2). Progress output that pads each line to a constant width is fine.

Usage (run after re-executing notebooks; ``make execute`` does it)::

    python -m course_lib.notebook_format notebooks solutions exercises    # rewrite in place
    python -m course_lib.notebook_format --check notebooks solutions      # exit 1 if any would change
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["normalize", "canonical_text", "process_stream_text", "main"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_CONTROL = re.compile(r"[\n\b\r]")
# how strict nbval reads a stream's text, on the stored and the fresh side alike
# (nbval.plugin.coalesce_streams: its backspace pass never runs, only this carriage-return one)
_NBVAL_CR = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)


def _nbval_view(text: str) -> str:
    return _NBVAL_CR.sub("", text)


def _nbval_streams(outputs) -> dict:
    texts = {}
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            texts[out.get("name")] = texts.get(out.get("name"), "") + text
    return {name: _nbval_view(text) for name, text in texts.items()}


def process_stream_text(index: int, text: str, buffer: str = "") -> tuple[str, int]:
    """Write ``text`` into ``buffer`` at ``index`` as JupyterLab 4's output area does.

    A line-for-line port of ``processText`` in ``@jupyterlab/outputarea`` (model.ts):
    ``\\r`` moves the cursor to the start of its line, ``\\b`` deletes backwards within a line,
    ``\\n`` appends a newline at the end. Returns ``(new buffer, new cursor index)``.
    """
    if not _CONTROL.search(text):
        return buffer[:index] + text + buffer[index + len(text):], index + len(text)
    cursor, start = index, 0
    while True:
        match = _CONTROL.search(text, start)
        end = match.start() if match else len(text)
        chunk = text[start:end]
        buffer = buffer[:cursor] + chunk + buffer[cursor + len(chunk):]
        cursor += len(chunk)
        if match is None:
            return buffer, cursor
        start = end + 1
        char = text[end]
        if char == "\b":
            if cursor > 0 and buffer[cursor - 1] != "\n":
                buffer = buffer[:cursor - 1] + buffer[cursor + 1:]  # (JupyterLab's exact behaviour)
                cursor -= 1
        elif char == "\r":
            while cursor > 0 and buffer[cursor - 1] != "\n":
                cursor -= 1
        else:  # "\n"
            buffer += "\n"
            cursor = len(buffer)


def _merge_streams(outputs: list) -> list:
    merged, last_name, index = [], None, 0
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            if merged and out.get("name") == last_name:
                merged[-1]["text"], index = process_stream_text(index, text, merged[-1]["text"])
                continue
            out = copy.deepcopy(out)
            out["text"], index = process_stream_text(0, text)
            last_name = out.get("name")
        else:
            last_name = None
        merged.append(out)
    return merged


def _js_numbers(value):
    """JSON as it comes back from JavaScript: integral floats become ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def normalize(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` in the canonical stored form (see the module docstring)."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            data = out.get("data")
            if data and WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
            outputs.append(out)
        cell.outputs = _merge_streams(outputs)
        if _nbval_streams(cell.outputs) != _nbval_streams(outputs):
            raise ValueError(
                f"cell {number} ({cell.source[:60]!r}): its printed text overwrites a line (\\r or \\b) "
                "with a shorter one; JupyterLab keeps the old line's tail, strict nbval drops it, so no "
                "stored form satisfies both. Pad the shorter text with spaces (as tqdm does) or print lines.")
    return nbformat.from_dict(_js_numbers(nb))


def canonical_text(text: str) -> str:
    """The notebook JSON ``text`` as stored: what JupyterLab 4 writes when it saves it."""
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    out = nbformat.writes(normalize(nb), version=nbformat.NO_CONVERT)
    return out if out.endswith("\n") else out + "\n"  # nbformat.write (the server) adds it


def _notebooks(paths) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.glob("*.ipynb"))
        elif p.suffix == ".ipynb" and p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"not a notebook or a directory: {p}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.notebook_format", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks, or directories whose *.ipynb to process")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not canonical")
    args = parser.parse_args(argv)
    changed = []
    for path in _notebooks(args.paths):
        text = path.read_text(encoding="utf-8")
        try:
            new = canonical_text(text)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if new != text:
            changed.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "not canonical" if args.check else "normalised"
    for path in changed:
        print(f"{verb}: {path}")
    if args.check and changed:
        print("run: python -m course_lib.notebook_format " + " ".join(map(str, args.paths)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
