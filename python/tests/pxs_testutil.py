"""Helpers shared by the pytest files (imported from the test directory)."""
import os
import signal
import threading
import time


class InterruptWhenStuck:
    """Sends SIGINT to this process once the main thread has been inside the
    same call (between begin() and end()) for `after` seconds, so the signal
    lands while that call waits, whatever the machine's speed. A call that
    never blocks never gets the signal. Installs Python's default SIGINT
    handler (KeyboardInterrupt) for the duration, in case the launcher
    started this process with SIGINT ignored."""

    def __init__(self, after=0.5):
        self.after = after
        self.call = 0
        self.busy_since = None
        self.fired = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, signal.default_int_handler)
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()
        signal.signal(signal.SIGINT, self._old)
        return False

    def begin(self):
        self.call += 1
        self.busy_since = (self.call, time.monotonic())

    def end(self):
        self.busy_since = None

    def _watch(self):
        fired_for = None
        while not self._stop.wait(0.05):
            b = self.busy_since
            if b and b[0] != fired_for and time.monotonic() - b[1] >= self.after:
                fired_for = b[0]
                self.fired += 1
                os.kill(os.getpid(), signal.SIGINT)
