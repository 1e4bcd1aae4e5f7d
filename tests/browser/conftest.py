"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium per run.

These tests are a separate suite: the bare ``pytest`` of the README does not collect this
folder (pyproject.toml's ``norecursedirs``), ``pytest tests/browser -n 0`` runs it (one
notebook at a time in one JupyterLab: ``-n 0`` turns off the parallel workers that
pyproject.toml's ``-n auto`` asks for), and CI runs it
after the README's commands (``.ci/run``). They need Debian's ``chromium`` at
/usr/bin/chromium and the ``playwright`` pip package (in requirements.txt); Playwright's own
browser download (``playwright install``) is never used. If either is missing the tests
fail (they never skip) with a message naming what to install.

Options (after ``pytest tests/browser -n 0``):

``--widget-notebooks DIR``   where to look for notebooks with widgets (default: notebooks/);
                             the server's root is the repository, or DIR when DIR lies
                             outside it (for the fixture notebooks of fixture_notebook.py)
``--chromium PATH``          the browser (default /usr/bin/chromium)
``--run-all-timeout S``      seconds one notebook's "Restart Kernel and Run All Cells" may
                             take (default 900: chapters 9 and 11 train small models, and on
                             a loaded 2-core machine chapter 9 took more than 480 s; the
                             wait ends as soon as the last cell has run, so a generous
                             limit costs nothing when all is well)
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 90

# JupyterLab user settings for the test server: never autosave (the test must not write
# the chapter notebooks), keep every cell in the DOM (no virtual scrolling), no news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
# Server/lab configuration: no network (news, update check, extension manager), and the
# app object exposed as window.jupyterapp so the test can read the notebook's model.
SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
        "expose_app_in_browser": True,
    },
}


def pytest_configure(config):
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0) and not os.environ.get("PYTEST_XDIST_WORKER"):
        raise pytest.UsageError(f"tests/browser drives one JupyterLab, one notebook at a time: run it "
                                f"with -n 0 (pytest tests/browser -n 0), not -n {workers}")


def pytest_addoption(parser):
    group = parser.getgroup("browser", "browser tests of the widgets in JupyterLab")
    group.addoption("--widget-notebooks", default=str(REPO / "notebooks"),
                    help="folder of notebooks to test (those whose code uses helpers.widgets)")
    group.addoption("--chromium", default=DEFAULT_CHROMIUM, help="path of the Chromium binary")
    group.addoption("--run-all-timeout", type=float, default=900.0,
                    help="seconds one notebook's Restart Kernel and Run All Cells may take")


def uses_widgets(path: Path) -> bool:
    """True if a code cell of the notebook at ``path`` uses ``helpers.widgets``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return any(
        cell.get("cell_type") == "code" and "helpers.widgets" in "".join(cell.get("source", ""))
        for cell in nb.get("cells", [])
    )


def widget_notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if uses_widgets(p))


def pytest_generate_tests(metafunc):
    if "widget_notebook" not in metafunc.fixturenames:
        return
    folder = Path(metafunc.config.getoption("widget_notebooks")).resolve()
    found = widget_notebooks(folder) if folder.is_dir() else []
    if found:
        metafunc.parametrize("widget_notebook", found, ids=[p.stem for p in found])
    else:
        # Never pass (or skip) vacuously: one test case that fails and says why.
        metafunc.parametrize("widget_notebook", [folder], ids=["no-widget-notebook-found"])


@pytest.fixture(scope="session")
def server_root(request) -> Path:
    folder = Path(request.config.getoption("widget_notebooks")).resolve()
    return REPO if folder.is_relative_to(REPO) else folder


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_COOKIES = http.cookiejar.CookieJar()
_OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(_COOKIES))


def _http(method: str, url: str, timeout: float = 10.0):
    """A JSON request to the server; non-GET requests carry the _xsrf cookie's token."""
    headers = {}
    if method != "GET":
        if not any(cookie.name == "_xsrf" for cookie in _COOKIES):
            base = url.split("/api/")[0] + "/"
            _OPENER.open(base + "lab", timeout=timeout).read()  # the lab page sets _xsrf
        headers["X-XSRFToken"] = next(c.value for c in _COOKIES if c.name == "_xsrf")
    request = urllib.request.Request(url, method=method, headers=headers)
    with _OPENER.open(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


@dataclass
class JupyterLab:
    url: str  # ends with "/"
    root: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def error_lines(self) -> list[str]:
        """Lines of the server log (which also gets the kernels' stderr) that report errors."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line.strip()[:300] for line in lines
                if ("Traceback" in line or "Error" in line or "Exception" in line or line.startswith("[E "))]

    def shutdown_kernels(self) -> None:
        """Shut down every session and kernel of this server (one notebook at a time)."""
        for session in _http("GET", self.url + "api/sessions") or []:
            _http("DELETE", self.url + f"api/sessions/{session['id']}")
        for kernel in _http("GET", self.url + "api/kernels") or []:
            _http("DELETE", self.url + f"api/kernels/{kernel['id']}")


@pytest.fixture(scope="session")
def jupyter_lab(server_root) -> JupyterLab:
    """A JupyterLab on 127.0.0.1 with no token, fresh config/runtime/settings dirs; stopped by PID."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="browser-test-jupyter-"))
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for folder in dirs.values():
        folder.mkdir()
    (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    for rel, settings in LAB_SETTINGS.items():
        target = dirs["settings"] / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings))

    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
        # the kernelspec runs "python": make it this environment's python
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    port = _free_port()
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={server_root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = ARTIFACTS / "jupyterlab-server.log"
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=server_root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    lab = JupyterLab(f"http://127.0.0.1:{port}/", server_root, process, log_path)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with status {process.returncode} before serving; "
                            f"command: {' '.join(command)}\nserver log:\n{lab.log_tail()}", pytrace=False)
            try:
                _http("GET", lab.url + "api/status", timeout=2)
                break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {lab.url} within {SERVER_START_TIMEOUT_S} s\n"
                            f"server log:\n{lab.log_tail()}", pytrace=False)
            time.sleep(0.25)
        yield lab
    finally:
        try:
            if process.poll() is None:
                lab.shutdown_kernels()
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(request):
    """A persistent headless Chromium context (Debian's chromium, fresh user-data-dir)."""
    executable = request.config.getoption("chromium")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"The browser tests need the 'playwright' package ({err}); "
                    "install the course's requirements: pip install -r requirements.txt", pytrace=False)
    if not (Path(executable).is_file() and os.access(executable, os.X_OK)):
        pytest.fail(f"No Chromium at {executable}: install Debian's package "
                    "(apt-get update && apt-get install -y chromium) or pass --chromium PATH. "
                    "Do not use 'playwright install'.", pytrace=False)
    user_data_dir = tempfile.mkdtemp(prefix="browser-test-chromium-")
    # Chromium also writes outside its user-data-dir (crash reports, caches under
    # ~/.config and ~/.cache): give it a throwaway home so the user's stays untouched.
    browser_env = {**os.environ, "HOME": user_data_dir,
                   "XDG_CONFIG_HOME": os.path.join(user_data_dir, ".config"),
                   "XDG_CACHE_HOME": os.path.join(user_data_dir, ".cache")}
    playwright = sync_playwright().start()
    context = None
    try:
        try:
            context = playwright.chromium.launch_persistent_context(
                user_data_dir,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 1000},
                env=browser_env,
                timeout=60_000,
            )
        except PlaywrightError as err:
            pytest.fail(f"Could not launch Chromium at {executable} with {CHROMIUM_FLAGS}: {err}",
                        pytrace=False)
        context.set_default_timeout(30_000)
        yield context
    finally:
        if context is not None:
            context.close()
        playwright.stop()
        shutil.rmtree(user_data_dir, ignore_errors=True)
