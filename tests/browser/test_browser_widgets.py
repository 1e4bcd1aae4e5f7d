"""Every chapter's widget works in a real JupyterLab, driven by a real (headless) browser.

For each notebook in notebooks/ whose code uses ``helpers.widgets``, in one JupyterLab
server and one Chromium for the whole run (see conftest.py):

1. open it, clear its outputs, and run "Kernel > Restart Kernel and Run All Cells";
2. wait until every code cell has run and every widget's image has rendered;
3. for each Explorer (an ipywidgets VBox of an HBox of controls above an Image), change a
   control as a user would (slider handle + arrow key, dropdown, checkbox, ...) and wait
   until the image shows a new figure;

and assert that no cell has an error output (except cells tagged ``raises-exception``), no
widget shows "Error displaying widget", each Explorer's figure changed (its PNG's URL and
its pixels on screen), and the kernel stayed alive. Screenshots go to
test-artifacts/browser/<notebook>/. The notebook file itself is never saved (autosave is
off) and the test asserts it is byte-for-byte unchanged.
"""
from __future__ import annotations

import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

OPEN_TIMEOUT_S = 90          # page load + kernel start
WIDGET_RENDER_TIMEOUT_S = 30  # after the last cell ran
CHANGE_TIMEOUT_S = 15        # one control change -> new figure on screen
IDLE_TIMEOUT_S = 30
# The ipywidgets controls, wherever an Explorer's layout nests them (HBoxes, VBoxes).
CONTROLS = ", ".join([
    ".widget-slider", ".widget-dropdown", ".widget-checkbox", ".widget-toggle-buttons",
    ".widget-radio", ".widget-text", ".widget-toggle-button:not(.widget-toggle-buttons *)",
])
KERNEL_TROUBLE = ("dead", "autorestarting", "restarting", "terminating")

# Reads the open notebook's model through window.jupyterapp (--expose-app-in-browser).
STATE_JS = """(path) => {
  const app = window.jupyterapp;
  if (!app) return {app: false};
  let panel = null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) panel = w;
  }
  if (!panel) return {app: true, panel: false};
  const session = panel.sessionContext.session;
  const kernel = session ? session.kernel : null;
  const cells = [];
  const list = panel.content.model.cells;
  for (let i = 0; i < list.length; i++) {
    const cell = list.get(i);
    if (cell.type !== 'code') continue;
    const source = cell.sharedModel.getSource();
    const outputs = [];
    for (let j = 0; j < cell.outputs.length; j++) {
      const o = cell.outputs.get(j).toJSON();
      const text = Array.isArray(o.text) ? o.text.join('') : (o.text || null);
      outputs.push({type: o.output_type, name: o.name || null, ename: o.ename || null,
                    evalue: o.evalue || null, text: text});
    }
    cells.push({index: i, count: cell.executionCount, empty: source.trim() === '',
                tags: cell.getMetadata('tags') || [], head: source.split('\\n')[0].slice(0, 100),
                outputs: outputs});
  }
  return {app: true, panel: true, ready: panel.context.isReady,
          kernel: kernel ? kernel.status : null, cells: cells};
}"""

# After Run All: record the kernel's status changes, and every error message the kernel
# sends (an exception in a widget's observer reaches no cell, only this channel).
WATCH_KERNEL_JS = """(path) => {
  const app = window.jupyterapp;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.sessionContext) {
      window.__kernelStatuses = [];
      window.__kernelErrors = [];
      w.sessionContext.statusChanged.connect((_, status) => window.__kernelStatuses.push(status));
      w.sessionContext.session.kernel.anyMessage.connect((_, args) => {
        const msg = args.msg;
        if (args.direction === 'recv' && msg.header.msg_type === 'error') {
          window.__kernelErrors.push(msg.content.ename + ': ' + msg.content.evalue);
        }
      });
      return true;
    }
  }
  return false;
}"""


def _fail(notebook: str, message: str, page=None, shots: Path | None = None) -> None:
    if page is not None and shots is not None:
        try:
            page.screenshot(path=str(shots / "failure.png"))
            message += f"\n(screenshot: {shots / 'failure.png'})"
        except Exception:  # noqa: BLE001 - the failure message matters more than the shot
            pass
    pytest.fail(f"{notebook}: {message}", pytrace=False)


def _errors(state: dict) -> list[str]:
    """Error outputs of cells not tagged raises-exception, as readable lines."""
    found = []
    for cell in state.get("cells", []):
        if "raises-exception" in cell["tags"]:
            continue
        for out in cell["outputs"]:
            if out["type"] == "error":
                found.append(f"cell {cell['index']} ({cell['head']!r}): {out['ename']}: {out['evalue']}")
    return found


def _first_error_cell(state: dict) -> int | None:
    for cell in state.get("cells", []):
        if "raises-exception" not in cell["tags"] and any(o["type"] == "error" for o in cell["outputs"]):
            return cell["index"]
    return None


def _stderr(state: dict) -> list[str]:
    return [f"cell {c['index']}: {o['text'].strip()[:300]}" for c in state.get("cells", [])
            for o in c["outputs"] if o["type"] == "stream" and o["name"] == "stderr" and o["text"]]


def _click_menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _change_control(control) -> str | None:
    """Change one ipywidgets control as a user would; describe it, or None if unknown kind."""
    handle = control.locator(".noUi-handle")
    if handle.count():
        handle = handle.first
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        at_top = now is not None and top is not None and float(now) >= float(top)
        key = "ArrowLeft" if at_top else "ArrowRight"
        handle.focus()
        handle.press(key)
        return f"slider: focused its handle and pressed {key} (aria-valuenow was {now})"
    select = control.locator("select")
    if select.count():
        select = select.first
        options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        others = [v for v in options if v != select.input_value()]
        if not others:
            return None
        select.select_option(others[0])
        return f"dropdown: selected option {others[0]!r}"
    checkbox = control.locator("input[type=checkbox]")
    if checkbox.count():
        checkbox.first.click()
        return "checkbox: clicked"
    radio = control.locator("input[type=radio]:not(:checked)")
    if radio.count():
        radio.first.click()
        return "radio buttons: clicked an unchecked one"
    toggle = control.locator("button.widget-toggle-button:not(.mod-active)")
    if toggle.count():
        toggle.first.click()
        return "toggle buttons: clicked an inactive one"
    number = control.locator("input[type=number]")
    if number.count():
        number.first.focus()
        number.first.press("ArrowUp")
        number.first.press("Enter")
        return "number box: pressed ArrowUp, Enter"
    if control.evaluate("el => el.tagName") == "BUTTON":  # a ToggleButton
        control.click()
        return "toggle button: clicked"
    return None  # e.g. a free text box: no value the test could safely type


def test_widgets_work_in_jupyterlab(widget_notebook: Path, request):
    if not widget_notebook.is_file():
        pytest.fail(f"No notebook in {widget_notebook} has a code cell using helpers.widgets: "
                    "there is no widget to test (the browser suite must not pass vacuously).",
                    pytrace=False)
    context = request.getfixturevalue("browser")  # first: fails fast if Chromium is missing
    lab = request.getfixturevalue("jupyter_lab")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    rel = widget_notebook.relative_to(lab.root).as_posix()
    name = widget_notebook.stem
    shots = ARTIFACTS / name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    original = widget_notebook.read_bytes()
    started = time.monotonic()

    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda err: js_errors.append(f"uncaught: {err}"))
    page.on("console", lambda msg: js_errors.append(f"console.{msg.type}: {msg.text[:300]}")
            if msg.type == "error" else None)

    def state() -> dict:
        return page.evaluate(STATE_JS, rel)

    def fail(message: str, cell_index: int | None = None) -> None:
        if js_errors:
            message += "\nJavaScript errors in the page:\n  " + "\n  ".join(js_errors[:8])
        server_errors = lab.error_lines()
        if server_errors:
            message += "\nerrors in the server log:\n  " + "\n  ".join(server_errors[-8:])
        if cell_index is not None:  # show that cell in the failure screenshot
            try:
                page.locator(".jp-Notebook .jp-Cell").nth(cell_index).scroll_into_view_if_needed(timeout=5000)
            except PlaywrightTimeout:
                pass
        _fail(name, message, page, shots)

    try:
        # 1. open the notebook and wait for its kernel
        page.goto(lab.url + "lab/tree/" + urllib.parse.quote(rel) + "?reset",
                  wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_S * 1000)
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        current = {}
        while True:
            current = state()
            if not current.get("app") and time.monotonic() > started + 20:
                fail("window.jupyterapp is missing: was the server started with "
                     "--expose-app-in-browser (conftest.SERVER_CONFIG)?")
            if current.get("panel") and current.get("ready") and current.get("kernel") == "idle":
                break
            if time.monotonic() > deadline:
                fail(f"JupyterLab did not open {rel} with an idle kernel within {OPEN_TIMEOUT_S} s "
                     f"(app exposed: {current.get('app')}, notebook open: {current.get('panel')}, "
                     f"kernel: {current.get('kernel')})\nserver log:\n{lab.log_tail(15)}")
            time.sleep(0.25)
        page.wait_for_selector(".jp-Notebook", timeout=30_000)
        for close in page.locator(".jp-Notification-Toast-Close").all():
            close.click()

        # 2. clear the stored outputs, then Restart Kernel and Run All Cells
        _click_menu(page, "Edit", "Clear Outputs of All Cells")
        deadline = time.monotonic() + 15
        while any(c["count"] is not None or c["outputs"] for c in state()["cells"]):
            if time.monotonic() > deadline:
                fail("Edit > Clear Outputs of All Cells did not clear the outputs within 15 s")
            time.sleep(0.2)
        _click_menu(page, "Kernel", "Restart Kernel and Run All Cells")
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
        run_started = time.monotonic()
        timeout = request.config.getoption("run_all_timeout")
        while True:
            current = state()
            errors = _errors(current)
            if errors:
                fail("a cell raised during Restart Kernel and Run All Cells:\n  " + "\n  ".join(errors),
                     cell_index=_first_error_cell(current))
            if current.get("kernel") == "dead":
                fail("the kernel died during Restart Kernel and Run All Cells")
            pending = [c for c in current["cells"] if c["count"] is None and not c["empty"]]
            if not pending and current.get("kernel") == "idle":
                break
            if time.monotonic() - run_started > timeout:
                first = pending[0] if pending else None
                where = f"cell {first['index']} ({first['head']!r}) had not run" if first else "kernel not idle"
                fail(f"Restart Kernel and Run All Cells did not finish within {timeout:.0f} s: {where} "
                     f"(kernel: {current.get('kernel')}); raise --run-all-timeout if the notebook is slow")
            time.sleep(0.5)
        run_seconds = time.monotonic() - run_started
        page.evaluate(WATCH_KERNEL_JS, rel)

        # 3. every widget rendered, no error anywhere
        images = page.locator(".jp-Notebook .jp-OutputArea-output img.widget-image")
        deadline = time.monotonic() + WIDGET_RENDER_TIMEOUT_S
        while True:
            broken = page.locator(".jp-Notebook", has_text="Error displaying widget")
            if broken.count():
                fail('a widget shows "Error displaying widget" after Run All:\n'
                     + "\n".join(t.strip()[:300] for t in page.locator(
                         ".jp-OutputArea-output:has-text('Error displaying widget')").all_inner_texts()))
            loaded = images.evaluate_all("els => els.map(e => e.complete && e.naturalWidth > 0)")
            if loaded and all(loaded):
                break
            if time.monotonic() > deadline:
                fail(f"no widget image rendered within {WIDGET_RENDER_TIMEOUT_S} s after Run All "
                     f"({len(loaded)} img.widget-image found, {sum(loaded)} loaded); "
                     "(a widget view failed to render, or no cell shows an explorer)")
            time.sleep(0.25)
        page.screenshot(path=str(shots / "notebook-after-run-all.png"))
        errors = _errors(state())
        assert not errors, f"{name}: error outputs after Run All:\n  " + "\n  ".join(errors)

        # 4. each Explorer: change a control, the figure must change
        explorers = page.locator(".jp-Notebook .jp-OutputArea-output .widget-vbox:has(> img.widget-image)")
        if explorers.count() == 0:
            fail("no Explorer (a widget VBox holding controls above an Image) rendered; "
                 f"{images.count()} widget image(s) found outside one")
        done = []
        for k in range(explorers.count()):
            root = explorers.nth(k)
            image = root.locator(":scope > img.widget-image").first
            image.scroll_into_view_if_needed()
            before_src = image.get_attribute("src")
            before_png = image.screenshot(path=str(shots / f"explorer{k}-before.png"))
            controls = root.locator(CONTROLS)
            attempts = []
            changed = False
            for c in range(controls.count()):
                action = _change_control(controls.nth(c))
                if action is None:
                    attempts.append(f"control {c}: left alone (not a kind this test can change)")
                    continue
                try:
                    page.wait_for_function(
                        "([img, before]) => img.src !== before && img.complete && img.naturalWidth > 0",
                        arg=[image.element_handle(), before_src], timeout=CHANGE_TIMEOUT_S * 1000)
                except PlaywrightTimeout:
                    attempts.append(f"control {c}: {action}; the image did not change within "
                                    f"{CHANGE_TIMEOUT_S} s")
                    continue
                attempts.append(f"control {c}: {action}; the image changed")
                done.append(f"explorer {k}: {attempts[-1]}")
                changed = True
                break
            if not changed:
                stderr = _stderr(state())
                kernel_errors = page.evaluate("() => window.__kernelErrors")
                fail(f"explorer {k}: changing a control never changed its figure:\n  "
                     + "\n  ".join(attempts or ["it has no controls"])
                     + (("\nerrors the kernel sent (e.g. from the widget's observer):\n  "
                         + "\n  ".join(kernel_errors)) if kernel_errors else "")
                     + (("\nstderr in the notebook:\n  " + "\n  ".join(stderr)) if stderr else ""))
            after_png = image.screenshot(path=str(shots / f"explorer{k}-after.png"))
            assert after_png != before_png, (
                f"{name}: explorer {k}: the image's URL changed but its pixels on screen did not "
                f"({attempts[-1]}); see {shots}")

        # 5. still no error, no broken widget, and the kernel alive and idle
        page.screenshot(path=str(shots / "notebook-after-change.png"))
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while (current := state()).get("kernel") != "idle":
            if current.get("kernel") in KERNEL_TROUBLE or time.monotonic() > deadline:
                fail(f"the kernel is {current.get('kernel')!r}, not idle, after the control change")
            time.sleep(0.25)
        statuses = page.evaluate("() => window.__kernelStatuses")
        trouble = [s for s in statuses if s in KERNEL_TROUBLE]
        assert not trouble, f"{name}: the kernel went {trouble} after Run All (statuses {statuses})"
        indicator = page.locator(".jp-Notebook-ExecutionIndicator")
        assert indicator.count(), f"{name}: no kernel execution indicator in the notebook's toolbar"
        assert indicator.first.get_attribute("data-status") == "idle", (
            f"{name}: execution indicator says {indicator.first.get_attribute('data-status')!r}")
        assert not page.locator("body", has_text="Kernel Restarting").count(), f"{name}: kernel restarted"
        assert not page.locator("body", has_text="Dead kernel").count(), f"{name}: dead kernel"
        errors = _errors(current) + page.evaluate("() => window.__kernelErrors")
        assert not errors, f"{name}: errors after the control change:\n  " + "\n  ".join(errors)
        assert not page.locator(".jp-Notebook", has_text="Error displaying widget").count(), (
            f'{name}: "Error displaying widget" after the control change')
        (shots / "summary.txt").write_text(
            f"{rel}: Restart Kernel and Run All Cells took {run_seconds:.1f} s, the whole test "
            f"{time.monotonic() - started:.1f} s\n" + "".join(f"{line}\n" for line in done))
    except PlaywrightTimeout as err:
        fail(f"browser step timed out: {err.message.splitlines()[0]}")
    finally:
        page.close()
        lab.shutdown_kernels()
    # Reached only when everything above passed (a failure above is the one to report).
    assert widget_notebook.read_bytes() == original, (
        f"{name}: {widget_notebook} changed on disk during the browser test "
        "(autosave must stay off; or something else wrote it meanwhile)")
