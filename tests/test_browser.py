"""The course in a real browser: JupyterLab driven through Playwright and Debian's Chromium.

For every lecture notebook (``notebooks/*.ipynb``, discovered at collection) the test does what
a learner does in the layout ``make lab`` opens (1400x900, file browser open):

1. opens the notebook and trusts it (JupyterLab saves it then): the file must stay byte-identical
   (the stored form is JupyterLab's own, see ``course_lib.notebook_format``);
2. runs every cell, as a learner's "Run All" does (``COURSE_BROWSER_CELLS=needed`` runs only the
   cells the explorers need -- the setup cell, the explorer cells and the cells they depend on,
   found by ``tests/notebook_slice.py`` -- for a quick check) and asserts that no cell shows an error;
3. finds every explorer (``course_lib.widgets.explorer``: CSS class ``course-explorer``), asserts
   each slider track is at least 80 px wide and the plot image is shown at its natural size, then
   moves every control one step with the keyboard and back by dragging (or clicking), and
   asserts the plot image changed each time.

One JupyterLab server and one browser page serve all notebooks (kernels from this Python, the
checkout on PYTHONPATH, autosave off; settings, runtime files and the trust database in a temporary
directory); each notebook's kernel is shut down after its test, and the server and every kernel
are stopped whatever happens. Nothing is saved back: each notebook is byte-identical afterwards
(if not, the test restores it and fails).
Screenshots of failures go to ``.browser-test/`` (git-ignored).

Run it alone: ``python -m pytest -m browser tests/test_browser.py -v``. Without Chromium at
``/usr/bin/chromium`` (``make test`` installs Debian's ``chromium`` when it can) or without the
``playwright`` package, the tests skip with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from notebook_slice import needed_cells

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = ROOT / ".browser-test"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
# Without the networking flags Chromium keeps trying to reach Google's services, and on a closed
# network those refused connections stall it; a sandbox needs user namespaces that containers lack.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 900}
# By default every cell runs in the browser (about 3.5 min for eight chapters on a quiet 2-core
# machine, on one pytest worker while the other runs the rest). COURSE_BROWSER_CELLS=needed runs
# only what the explorers need (tests/notebook_slice.py): a quick check while developing.
RUN_ALL = os.environ.get("COURSE_BROWSER_CELLS", "all") != "needed"
MIN_TRACK_PX = 80
RUN_ALL_TIMEOUT_S = 600      # a lecture notebook runs in about a minute; generous for loaded machines
REDRAW_TIMEOUT_S = 60
LAB_SETTINGS = {             # user settings for the test's JupyterLab (a temporary directory)
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the browser test cannot run: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; the kernels the server started)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _new_session_ending_with_parent() -> None:
    """In the child before exec: a session of its own, and SIGTERM when pytest dies (even killed)."""
    os.setsid()
    try:  # Linux: PR_SET_PDEATHSIG; the server then shuts its kernels down as on any SIGTERM
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _kill_group(pid: int, sig) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        pass


class Lab:
    """A JupyterLab server on a free port, serving the checkout; ``stop()`` ends it and its kernels."""

    def __init__(self, workdir: Path):
        self.port, self.token = _free_port(), os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = workdir / "settings"
        for plugin, values in LAB_SETTINGS.items():
            f = settings / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernels use the inline backend, as a learner's do
        # JUPYTER_DATA_DIR holds the trust database: a fresh one, so every notebook opens untrusted
        # as in a fresh clone (kernel specs and lab extensions come from this Python's prefix)
        env.update(JUPYTER_CONFIG_DIR=str(workdir / "config"), JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
                   JUPYTER_DATA_DIR=str(workdir / "data"),
                   JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
        env.setdefault("OMP_WAIT_POLICY", "passive")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={ROOT}", "--LabApp.expose_app_in_browser=True"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = open(workdir / "jupyterlab.log", "wb")
        # its own process group: stop() can end the server and anything it spawned in that group
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_new_session_ending_with_parent)
        self.kernel_pids: set[int] = set()
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start; see {self.log.name}")
                time.sleep(0.5)

    def api(self, method: str, path: str):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=20) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (through the REST API), remembering their pids first."""
        self.kernel_pids.update(_children(self.proc.pid))
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.shutdown_kernels()
            except OSError:
                pass
            self.kernel_pids.update(_children(self.proc.pid))
            _kill_group(self.proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # kernels run in sessions of their own (jupyter_client starts them so): end any survivor
        for pid in self.kernel_pids:
            _kill_group(pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}: install Debian's `chromium` package "
                     "(`make test` does it with apt when run as root on Debian/Ubuntu)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(lab, browser):
    """One JupyterLab page for all notebooks (loading JupyterLab costs seconds each time)."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")  # else an open can be lost
    yield page
    page.close()


# --- JavaScript run in the page (JupyterLab is exposed as window.jupyterapp) ----------------------
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext || !panel.context) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  let index = -1;
  for (const cell of panel.content.model.cells) {
    index += 1;
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    cells.push({index, count: cell.executionCount, source: cell.sharedModel.getSource().slice(0, 120),
                errors: outputs.filter(o => o.output_type === 'error')
                               .map(o => o.ename + ': ' + o.evalue)});
  }
  return {path: panel.context.path, kernel: kernel ? kernel.status : null, dirty: panel.context.model.dirty,
          trusted: panel.content.model.cells.length > 0 &&
                   [...panel.content.model.cells].every(c => c.type !== 'code' || c.trusted),
          cells};
}"""

EXPLORERS = """() => [...document.querySelectorAll('.jp-Notebook .course-explorer')].map(box => {
  const img = box.querySelector('img');
  return {
    image: img ? {src: img.src, width: img.clientWidth, natural: img.naturalWidth,
                  box: box.clientWidth} : null,
    controls: [...box.children[0].children].map(c => ({
      classes: c.className,
      label: (c.querySelector('.widget-label') || {}).textContent || '',
      track: (() => { const t = c.querySelector('.slider-container, .noUi-target');
                      return t ? t.getBoundingClientRect().width : null; })(),
    })),
  };
})"""


def _state(page):
    return page.evaluate(NOTEBOOK_STATE)


def _wait(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.25)


CLOSE_ALL = """() => {
  for (const dialog of document.querySelectorAll('.jp-Dialog')) dialog.remove();
  // dispose, not close: closing asks whether to save, and nothing may be saved
  for (const w of [...window.jupyterapp.shell.widgets('main')]) w.dispose();
}"""


def _open(page, lab, rel: str):
    page.evaluate(CLOSE_ALL)
    page.evaluate("p => { window.jupyterapp.commands.execute('docmanager:open', {path: p}); }", rel)
    _wait(lambda: (s := _state(page)) and s["path"] == rel and s["kernel"] == "idle" and s["cells"], 90,
          f"{rel} and its kernel")
    assert page.locator("#filebrowser").is_visible(), "the file browser should be open (make lab's layout)"


def _trust(page):
    # fire and forget: the command's promise waits for the dialog we are about to accept
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:trust'); }")
    page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=20_000)
    _wait(lambda: _state(page)["trusted"], 20, "the notebook to be trusted")


RUN_CELLS = """indices => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.deselectAll();
  nb.activeCellIndex = indices[0];
  for (const i of indices) nb.select(nb.widgets[i]);
  window.jupyterapp.commands.execute('notebook:run-cell');  // runs the selected cells, in order
}"""


def _image_src(page, i: int) -> str:
    return page.evaluate("i => document.querySelectorAll('.jp-Notebook .course-explorer')[i]"
                         ".querySelector('img').src", i)


def _expect_redraw(page, i: int, before: str, what: str) -> str:
    try:
        page.wait_for_function(
            "([i, before]) => { const img = document.querySelectorAll('.jp-Notebook .course-explorer')[i]"
            ".querySelector('img'); return img && img.src !== before && img.naturalWidth > 0; }",
            arg=[i, before], timeout=REDRAW_TIMEOUT_S * 1000)
    except Exception as exc:
        raise AssertionError(f"explorer {i}: the plot did not change after {what}") from exc
    return _image_src(page, i)


def _drag(page, knob, x1):
    box = knob.bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=8)
    page.mouse.up()


def _move_control(page, i: int, j: int, control, src: str) -> str:
    """Move control j of explorer i by keyboard, then back to where it was by mouse.

    Both moves must redraw the plot. Each control starts from the explorer's default view (the
    others are back at theirs), so a control that changes nothing there fails the test: in the
    default view, every control of an explorer should visibly matter.
    """
    handle = page.locator(".jp-Notebook .course-explorer").nth(i).locator(":scope > * > *").nth(j)
    name = control["label"] or control["classes"]
    if "widget-slider" in control["classes"] or "widget-hslider" in control["classes"]:
        knob = handle.locator(".noUi-handle")
        start, top = (float(knob.get_attribute(a)) for a in ("aria-valuenow", "aria-valuemax"))
        box = knob.bounding_box()
        x_start = box["x"] + box["width"] / 2
        knob.focus()
        page.keyboard.press("ArrowLeft" if start >= top else "ArrowRight")
        src = _expect_redraw(page, i, src, f"the arrow key on slider {name!r}")
        _drag(page, knob, x_start)  # by mouse, back to where it started
        src = _expect_redraw(page, i, src, f"dragging slider {name!r} back")
        assert float(knob.get_attribute("aria-valuenow")) == start, f"slider {name!r}: the drag missed its start"
        return src
    if "widget-dropdown" in control["classes"]:
        select = handle.locator("select")
        start = select.evaluate("s => s.selectedIndex")
        select.focus()
        options = select.locator("option").count()
        page.keyboard.press("ArrowUp" if start == options - 1 else "ArrowDown")
        src = _expect_redraw(page, i, src, f"the arrow key on dropdown {name!r}")
        select.select_option(index=start)
        return _expect_redraw(page, i, src, f"choosing the first value of dropdown {name!r} again")
    if "widget-checkbox" in control["classes"]:
        box = handle.locator("input[type=checkbox]")
        box.focus()
        page.keyboard.press("Space")
        src = _expect_redraw(page, i, src, f"the space bar on checkbox {name!r}")
        box.click()
        return _expect_redraw(page, i, src, f"clicking checkbox {name!r}")
    if "widget-toggle-buttons" in control["classes"]:
        buttons = handle.locator("button")
        classes = [b.get_attribute("class") or "" for b in buttons.all()]
        start = next(k for k, c in enumerate(classes) if "mod-active" in c)
        buttons.nth((start + 1) % len(classes)).click()
        src = _expect_redraw(page, i, src, f"clicking toggle buttons {name!r}")
        buttons.nth(start).click()
        return _expect_redraw(page, i, src, f"clicking toggle buttons {name!r} back")
    raise AssertionError(f"explorer {i}: the browser test does not know how to move a control with "
                         f"classes {control['classes']!r}; teach _move_control")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_every_explorer_responds(path, lab, page):
    rel = path.relative_to(ROOT).as_posix()
    original = path.read_bytes()
    timings = {}
    try:
        t0 = time.monotonic()
        _open(page, lab, rel)
        # 1. a learner trusts the notebook: JupyterLab saves it, which must change nothing
        assert not _state(page)["trusted"], f"{rel} opened trusted: the test's trust database is not fresh"
        mtime = path.stat().st_mtime_ns
        _trust(page)
        _wait(lambda: path.stat().st_mtime_ns != mtime and not _state(page)["dirty"], 20, "the trust save")
        saved = path.read_bytes()
        if saved != original:
            path.write_bytes(original)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / f"{path.stem}.saved.ipynb").write_bytes(saved)
            raise AssertionError(f"trusting {rel} in JupyterLab changed the file (restored; JupyterLab's "
                                 f"version is in .browser-test/): run `python -m course_lib.notebook_format {rel}`")
        timings["open+trust"] = time.monotonic() - t0

        # 2. run the cells (all of them, or what the explorers need): none may fail
        t1 = time.monotonic()
        cells = nbformat.reads(original.decode("utf-8"), as_version=4).cells
        needed, explorer_cells = needed_cells(cells)
        if RUN_ALL:
            needed = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        else:
            page.evaluate(RUN_CELLS, needed)

        def finished():
            s = [c for c in _state(page)["cells"] if c["index"] in needed]
            errors = [f"{c['source']!r}: {e}" for c in s for e in c["errors"]]
            if errors:
                raise AssertionError(f"{rel}: error output in the browser run:\n" + "\n".join(errors))
            return _state(page)["kernel"] == "idle" and all(c["count"] is not None for c in s)

        # running first clears the counts (stored ones are still there): wait for that, then the end
        _wait(lambda: any(c["count"] is None for c in _state(page)["cells"] if c["index"] in needed),
              60, "the run to start")
        _wait(finished, RUN_ALL_TIMEOUT_S, f"{len(needed)} code cells of {rel} to run")
        counts = [c["count"] for c in _state(page)["cells"] if c["index"] in needed]
        assert counts == list(range(1, len(needed) + 1)), f"{rel}: cells ran out of order: {counts}"
        timings[f"run {len(needed)} of {sum(c['cell_type'] == 'code' for c in cells)} cells"] = time.monotonic() - t1

        # 3. every explorer: layout, then each control by keyboard and by mouse
        t2 = time.monotonic()
        explorers = page.evaluate(EXPLORERS)
        assert explorers, f"{rel}: no explorer (course_lib.widgets.explorer) rendered"
        assert len(explorers) >= len(explorer_cells), \
            f"{rel}: {len(explorer_cells)} cells make explorers, {len(explorers)} rendered"
        for i, ex in enumerate(explorers):
            page.locator(".jp-Notebook .course-explorer").nth(i).scroll_into_view_if_needed()
            ex = page.evaluate(EXPLORERS)[i]
            assert ex["image"] and ex["image"]["natural"] > 0, f"explorer {i}: no plot image"
            img = ex["image"]
            assert img["width"] == min(img["natural"], img["box"]), \
                f"explorer {i}: the plot is shown {img['width']} px wide, its natural width is {img['natural']} px"
            for c in ex["controls"]:
                if c["track"] is not None:
                    assert c["track"] >= MIN_TRACK_PX, \
                        f"explorer {i}: slider {c['label']!r} has a {c['track']:.0f} px track (< {MIN_TRACK_PX})"
                    timings["narrowest track px"] = min(timings.get("narrowest track px", 1e9), c["track"])
            src = img["src"]
            for j, control in enumerate(ex["controls"]):
                src = _move_control(page, i, j, control, src)
        timings["explorers"] = time.monotonic() - t2
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{path.stem}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - the original failure matters more
            pass
        raise
    finally:
        page.evaluate(CLOSE_ALL)
        lab.shutdown_kernels()
        print(f"{path.name}: " + ", ".join(f"{k} {v:.1f}" + ("" if " px" in k else " s") for k, v in timings.items()))
    # 4. nothing was saved back
    after = path.read_bytes()
    if after != original:
        path.write_bytes(original)
        raise AssertionError(f"{rel} changed on disk during the browser run (restored)")


def test_screenshots_dir_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/.browser-test/" in ignored
    assert shutil.which("git") is None or subprocess.run(
        ["git", "check-ignore", "-q", str(ARTIFACTS / "x.png")], cwd=ROOT).returncode == 0
