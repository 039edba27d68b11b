"""Headless Chromium (Debian's /usr/bin/chromium) driven through the DevTools protocol.

The protocol runs over a pipe (``--remote-debugging-pipe``: commands on the browser's fd 3, replies and
events on its fd 4, each message JSON ended by a NUL byte), so the tests open no port and need no client
library. Clicks and typing go through ``Input.*``, the events a person's mouse and keyboard make.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags, Chromium keeps trying hosts this machine cannot reach.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars")
TIMEOUT = 30.0


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
    return None


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, user_data_dir: Path, width: int = 1280, height: int = 900):
        user_data_dir.mkdir(parents=True, exist_ok=True)
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def as_debugging_pipe() -> None:
            """In the child, before exec: the pipe ends on fds 3 and 4, kept open across exec. Copied out of
            the way first, since either end may already be fd 3 or 4 (and dup2 onto itself keeps close-on-exec)."""
            ends = [fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10), fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)]
            for target, end in zip((3, 4), ends, strict=True):
                os.dup2(end, target)
                os.set_inheritable(target, True)

        self.log = user_data_dir / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
                 f"--window-size={width},{height}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False, preexec_fn=as_debugging_pipe)
        os.close(commands_read)
        os.close(replies_write)
        self._next_id = 0
        self._pending: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    # --- the protocol

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._replies, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for waiting in list(self._pending.values()):
                    waiting.put({"error": {"message": "the browser closed the pipe"}})
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    waiting = self._pending.pop(message["id"], None)
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self.events.append(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            reply: queue.Queue = queue.Queue()
            self._pending[message_id] = reply
            message = {"id": message_id, "method": method, "params": params}
            if session:
                message["sessionId"] = session
            os.write(self._commands, json.dumps(message).encode() + b"\0")
        try:
            answer = reply.get(timeout=TIMEOUT)
        except queue.Empty:
            raise BrowserError(f"{method}: no reply in {TIMEOUT} s; see {self.log}") from None
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def send(self, method: str, **params: Any) -> dict:
        """A command to the page."""
        return self.call(method, self.session, **params)

    # --- what a test does with the page

    def open(self, url: str, ready: str = "document.documentElement.dataset.ready === 'true'") -> None:
        """Load ``url`` and wait for its load event, then for ``ready``."""
        self.navigate("Page.navigate", url=url)
        self.wait_for(ready)

    def reload(self, ready: str = "document.documentElement.dataset.ready === 'true'") -> None:
        self.navigate("Page.reload")
        self.wait_for(ready)

    def navigate(self, method: str, **params: Any) -> None:
        seen = len(self.events)
        self.send(method, **params)
        deadline = time.monotonic() + TIMEOUT
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events[seen:]):
            if time.monotonic() > deadline:
                raise BrowserError(f"{method}: the page did not load in {TIMEOUT} s")
            time.sleep(0.02)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        guarded = f"(() => {{ try {{ return Boolean({expression}); }} catch (error) {{ return false; }} }})()"
        while not self.evaluate(guarded):
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}; page errors: {self.page_errors()}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            if (!node) return null;
            node.scrollIntoView({{block: "center"}});
            const rect = node.getBoundingClientRect();
            return {{x: rect.left + rect.width / 2, y: rect.top + rect.height / 2, w: rect.width}};
        }})()""")
        if not box or not box["w"]:
            raise BrowserError(f"nothing to click at {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Focus the field, clear it and type ``text`` as keyboard input."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.dispatchKeyEvent", type="keyDown", key="Backspace", code="Backspace",
                  windowsVirtualKeyCode=8)
        self.send("Input.dispatchKeyEvent", type="keyUp", key="Backspace", code="Backspace", windowsVirtualKeyCode=8)
        if text:
            self.send("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select>, as a person's choice from its list does (a value, then change)."""
        found = self.evaluate(f"""(() => {{
            const select = document.querySelector({json.dumps(selector)});
            if (![...select.options].some((option) => option.value === {json.dumps(value)})) return false;
            select.focus();
            select.value = {json.dumps(value)};
            select.dispatchEvent(new Event("input", {{bubbles: true}}));
            select.dispatchEvent(new Event("change", {{bubbles: true}}));
            return true;
        }})()""")
        if not found:
            raise BrowserError(f"{selector} has no option {value!r}")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the viewport."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def page_errors(self) -> list[str]:
        """Script exceptions, console errors and browser log errors (a CSP refusal, a failed load)."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def requested_urls(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except BrowserError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)

