"""Every chapter's widget works in a real JupyterLab, driven by a real (headless) browser.

For each notebook in notebooks/ whose code uses ``helpers.widgets``, in one JupyterLab
server and one Chromium for the whole run (see conftest.py):

1. open it, clear its outputs, and run "Kernel > Restart Kernel and Run All Cells";
2. wait until every code cell has run and every widget's image has rendered;
3. for each Explorer (an ipywidgets VBox of an HBox of controls above an Image), wait
   until it has settled (the cells after it often set its controls from the kernel, and on
   a loaded machine those updates reach the page late), then change a control as a user
   would, choosing a move that must change its value (a slider's handle is moved away from
   the end it sits at; a dropdown gets a different option), wait until the control shows
   the new value, then until the image shows a new figure (a new URL, then new pixels on
   screen);

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

# Every wait below polls for the state it needs and gives up after its timeout with a
# message naming what it waited for; the timeouts are generous because a loaded machine
# (CI, or 2 cores shared by several jobs) is slow, and a wait ends as soon as its state holds.
OPEN_TIMEOUT_S = 90          # page load + kernel start
WIDGET_RENDER_TIMEOUT_S = 60  # after the last cell ran
SETTLE_TIMEOUT_S = 60        # an explorer's controls and image stop changing
QUIET_S = 1.5                # ... for this long
CONTROL_TIMEOUT_S = 20       # a key press or click -> the control shows its new value
CHANGE_TIMEOUT_S = 30        # the control's new value -> a new image URL, decoded
PIXELS_TIMEOUT_S = 15        # the new image URL -> new pixels on screen
IDLE_TIMEOUT_S = 60
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
WATCH_KERNEL_JS = r"""(path) => {
  const app = window.jupyterapp;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.sessionContext) {
      window.__kernelStatuses = [];
      window.__kernelErrors = [];
      window.__widgetMessages = {received: 0, sent: 0, last: []};
      w.sessionContext.statusChanged.connect((_, status) => window.__kernelStatuses.push(status));
      w.sessionContext.session.kernel.anyMessage.connect((_, args) => {
        const msg = args.msg;
        if (msg.header.msg_type === 'comm_msg') {
          const m = window.__widgetMessages;
          m[args.direction === 'recv' ? 'received' : 'sent'] += 1;
          const data = msg.content.data || {};
          m.last.push((args.direction === 'recv' ? 'from kernel: ' : 'to kernel: ') + (data.method || '?') + ' '
                      + Object.keys(data.state || {}).join(',') + ' (' + (msg.buffers || []).length + ' buffers)');
          m.last = m.last.slice(-6);
        }
        if (args.direction === 'recv' && msg.header.msg_type === 'error') {
          const where = (msg.content.traceback || []).join('\n').replace(/\u001b\[[0-9;]*m/g, '');
          window.__kernelErrors.push(msg.content.ename + ': ' + msg.content.evalue
                                     + (where ? '\n' + where.slice(-1500) : ''));
        }
      });
      return true;
    }
  }
  return false;
}"""


# For a failure message only: ask the kernel what its explorers hold (their control values,
# how often they redrew, the size of their PNG), to tell "the page never sent the change"
# from "the kernel redrew but sent no new image" (an empty figure is a ~2 kB PNG).
KERNEL_EXPLORERS_JS = r"""async (path) => {
  const app = window.jupyterapp;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.sessionContext && w.sessionContext.session) {
      const future = w.sessionContext.session.kernel.requestExecute({store_history: false, code:
        "print({k: (v.values, v.draws, len(v.image.value)) for k, v in list(globals().items()) "
        + "if type(v).__name__.endswith('Explorer') and not k.startswith('_')})"});
      let text = '';
      future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
      await future.done;
      return text.trim();
    }
  }
  return '(notebook not found)';
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


# What a control shows now: its slider handles' positions, select/input values, checked
# boxes and active buttons. A change of control must change this.
CONTROL_STATE_JS = """el => JSON.stringify([
  Array.from(el.querySelectorAll('.noUi-handle')).map(h => h.getAttribute('aria-valuenow')),
  Array.from(el.querySelectorAll('select, input')).map(i => [i.value, i.checked]),
  Array.from(el.querySelectorAll('button')).map(b => b.classList.contains('mod-active')),
  el.tagName === 'BUTTON' ? el.classList.contains('mod-active') : null])"""

# An explorer's whole visible state: its text (slider readouts, titles), every control,
# and its image's URL and loading state. Settled = unchanged for QUIET_S seconds.
EXPLORER_STATE_JS = """el => JSON.stringify([el.innerText,
  Array.from(el.querySelectorAll('.noUi-handle')).map(h => h.getAttribute('aria-valuenow')),
  Array.from(el.querySelectorAll('select, input')).map(i => [i.value, i.checked]),
  Array.from(el.querySelectorAll('img')).map(i => [i.src, i.complete && i.naturalWidth > 0])])"""


def _change_control(control) -> str | None:
    """Change one ipywidgets control as a user would; describe it, or None if unknown kind.

    The move is one that must change the control's value: a slider's first handle moves
    away from the end it sits at (ArrowLeft at its maximum, ArrowRight otherwise), a
    dropdown gets an option other than the selected one, a checkbox or button toggles."""
    handle = control.locator(".noUi-handle")
    if handle.count():
        handle = handle.first
        now, low, top = (handle.get_attribute(a) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
        if now is None or low is None or top is None:
            return None
        if float(low) >= float(top):
            return None                      # a slider with one position cannot move
        key = "ArrowLeft" if float(now) >= float(top) else "ArrowRight"
        handle.focus()
        handle.press(key)
        return f"slider: focused its handle and pressed {key} (aria-valuenow was {now}, range {low}..{top})"
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
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    rel = widget_notebook.relative_to(lab.root).as_posix()
    name = widget_notebook.stem
    shots = ARTIFACTS / name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    original = widget_notebook.read_bytes()
    started = time.monotonic()

    page = context.new_page()
    # The active tab: a page Chromium thinks is in the background may run its animation
    # frames (which JupyterLab's message loop and the image decoding wait on) late or never.
    page.bring_to_front()
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

        # 4. each Explorer: once it has settled, change a control; the figure must change
        explorers = page.locator(".jp-Notebook .jp-OutputArea-output .widget-vbox:has(> img.widget-image)")
        if explorers.count() == 0:
            fail("no Explorer (a widget VBox holding controls above an Image) rendered; "
                 f"{images.count()} widget image(s) found outside one")

        def wait_until_idle(what: str) -> None:
            deadline = time.monotonic() + IDLE_TIMEOUT_S
            while (status := state().get("kernel")) != "idle":
                if status in KERNEL_TROUBLE or time.monotonic() > deadline:
                    fail(f"waited {IDLE_TIMEOUT_S} s for the kernel to be idle {what}; it is {status!r}")
                time.sleep(0.25)

        def settle(k: int, root, why: str) -> None:
            """Wait until explorer k's controls, text and image have not changed for QUIET_S."""
            wait_until_idle(f"before using explorer {k} ({why})")
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            last, since = root.evaluate(EXPLORER_STATE_JS), time.monotonic()
            while True:
                time.sleep(0.25)
                now_state = root.evaluate(EXPLORER_STATE_JS)
                if now_state != last:
                    last, since = now_state, time.monotonic()
                elif time.monotonic() - since >= QUIET_S and all(
                        root.locator("img").evaluate_all("els => els.map(e => e.complete && e.naturalWidth > 0)")):
                    return
                if time.monotonic() > deadline:
                    fail(f"explorer {k}: waited {SETTLE_TIMEOUT_S} s for its controls and image to stay "
                         f"unchanged for {QUIET_S} s ({why}); they kept changing")

        def wait_for(predicate, timeout_s: float) -> bool:
            deadline = time.monotonic() + timeout_s
            while not predicate():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)
            return True

        done = []
        for k in range(explorers.count()):
            root = explorers.nth(k)
            image = root.locator(":scope > img.widget-image").first
            image.scroll_into_view_if_needed()
            controls = root.locator(CONTROLS)
            attempts = []
            changed = False
            for c in range(controls.count()):
                control = controls.nth(c)
                settle(k, root, "the kernel's updates from the cells after it" if c == 0
                       else f"the redraw after control {c - 1}")
                before_src = image.get_attribute("src")
                before_png = image.screenshot(path=str(shots / f"explorer{k}-before.png"))
                before_value = control.evaluate(CONTROL_STATE_JS)
                action = _change_control(control)
                if action is None:
                    attempts.append(f"control {c}: left alone (not a kind this test can change)")
                    continue
                if not wait_for(lambda: control.evaluate(CONTROL_STATE_JS) != before_value, CONTROL_TIMEOUT_S):
                    attempts.append(f"control {c}: {action}; waited {CONTROL_TIMEOUT_S} s for the control "
                                    "to show a new value, and it did not")
                    continue
                if not wait_for(lambda: image.evaluate(
                        "(img, before) => img.src !== before && img.complete && img.naturalWidth > 0",
                        before_src), CHANGE_TIMEOUT_S):
                    attempts.append(f"control {c}: {action}; its value changed, then waited "
                                    f"{CHANGE_TIMEOUT_S} s for a new image URL, and none came")
                    continue
                try:
                    image.evaluate("img => img.decode()")              # the new PNG is decoded
                except PlaywrightError:
                    pass                                               # a newer URL replaced it: poll below
                after = {}

                def pixels_changed() -> bool:
                    after["png"] = image.screenshot(path=str(shots / f"explorer{k}-after.png"))
                    return after["png"] != before_png
                if not wait_for(pixels_changed, PIXELS_TIMEOUT_S):
                    attempts.append(f"control {c}: {action}; the image's URL changed, then waited "
                                    f"{PIXELS_TIMEOUT_S} s for its pixels on screen to change, and "
                                    "they did not (the figure looks the same at the new value)")
                    continue
                attempts.append(f"control {c}: {action}; the control, the image URL and its pixels changed")
                done.append(f"explorer {k}: {attempts[-1]}")
                changed = True
                break
            if not changed:
                stderr = _stderr(state())
                kernel_errors = page.evaluate("() => window.__kernelErrors")
                seen = image.evaluate("img => `image: ${img.src.slice(0, 40)}..., complete ${img.complete}, "
                                      "${img.naturalWidth}x${img.naturalHeight}; page ${document.visibilityState}, "
                                      "focused ${document.hasFocus()}`")
                try:
                    seen += ("; widget messages since Run All (received from / sent to the kernel): "
                             + str(page.evaluate("() => window.__widgetMessages"))
                             + "; the kernel's explorers (values, draws, PNG bytes): "
                             + page.evaluate(KERNEL_EXPLORERS_JS, rel)[:800])
                except (PlaywrightError, PlaywrightTimeout) as err:
                    seen += f"; could not ask the kernel ({err})"
                fail(f"explorer {k}: changing a control never changed its figure ({seen}):\n  "
                     + "\n  ".join(attempts or ["it has no controls"])
                     + (("\nerrors the kernel sent (e.g. from the widget's observer):\n  "
                         + "\n  ".join(kernel_errors)) if kernel_errors else "")
                     + (("\nstderr in the notebook:\n  " + "\n  ".join(stderr)) if stderr else ""))

        # 5. still no error, no broken widget, and the kernel alive and idle
        page.screenshot(path=str(shots / "notebook-after-change.png"))
        wait_until_idle("after the control changes")
        current = state()
        statuses = page.evaluate("() => window.__kernelStatuses")
        trouble = [s for s in statuses if s in KERNEL_TROUBLE]
        assert not trouble, f"{name}: the kernel went {trouble} after Run All (statuses {statuses})"
        indicator = page.locator(".jp-Notebook-ExecutionIndicator")
        assert indicator.count(), f"{name}: no kernel execution indicator in the notebook's toolbar"
        if not wait_for(lambda: indicator.first.get_attribute("data-status") == "idle", IDLE_TIMEOUT_S):
            fail(f"waited {IDLE_TIMEOUT_S} s for the toolbar's execution indicator to say idle; it says "
                 f"{indicator.first.get_attribute('data-status')!r}")
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
