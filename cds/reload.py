"""Hot reload: the running service picks up edited rule files without a restart.

A watcher polls the rules directory; only when the files' contents change (a content
hash, so touching a file does nothing) does it validate and load them whole, register
the new ruleset under a new name, swap it in with one assignment, and retire the old
one, which durable-rules frees once no request is still evaluating with it. An invalid
edit keeps the old rules, logs every ``file:line:col`` problem once, and is not retried
until the files change again. Rulesets without engine regexes do not leak on reload
(DURABLE_RULES.md), so a reload costs compile time only.

The files are read once per poll into a snapshot; the same bytes are hashed, checked and
compiled (``cds.rulebase``), so a version always names what was compiled and an invalid
edit is judged (and logged) by its own content. A request holds the rule base it started
with (``lease``) until it ends: the swap never retires rules under a running request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cds.authoring import load_checked_rulebase
from cds.errors import CdsError, EngineError, RulesError
from cds.observability import metrics
from cds.rulebase import RuleBase, snapshot_hash, take_snapshot

__all__ = ["RuleBaseHolder", "watch_rules"]

log = logging.getLogger("cds.reload")


class RuleBaseHolder:
    """The rule base requests use now; replaced whole when the rule files change."""

    def __init__(self, rulebase: RuleBase) -> None:
        self._current = rulebase
        self._rejected: str | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> RuleBase:
        return self._current

    @property
    def directory(self) -> Path:
        return self._current.directory

    @contextmanager
    def lease(self) -> Iterator[RuleBase]:
        """The current rule base, kept alive (not retired) until the block ends.

        A reload swaps first and retires after, so a rule base found retired here has
        already been replaced: take the new one.
        """
        while True:
            rulebase = self._current
            if rulebase.engine.hold():
                break
            if rulebase is self._current:  # retired, not replaced: shutting down
                raise EngineError("the rules are being unloaded (shutting down)")
        try:
            yield rulebase
        finally:
            rulebase.engine.release()

    def reload_if_changed(self) -> bool:
        """Load the directory again if its contents changed; True when swapped."""
        with self._lock:
            snapshot = take_snapshot(self.directory)
            digest = snapshot_hash(snapshot)
            if digest in (self._current.fingerprint, self._rejected):
                return False
            try:
                fresh = load_checked_rulebase(self.directory, snapshot)  # compiles once
            except RulesError as exc:
                self._reject(digest, [str(p) for p in exc.problems])
                return False
            except (CdsError, OSError) as exc:
                self._reject(digest, [str(exc)])
                return False
            old, self._current = self._current, fresh
            self._rejected = None
        old.close()
        metrics.count_reload("ok")
        log.info("rules reloaded: %s -> %s", old.version, fresh.version)
        return True

    def _reject(self, digest: str, problems: list[str]) -> None:
        metrics.count_reload("refused")
        self._rejected = digest
        log.error(
            "rules in %s changed (content %s) but are invalid; keeping %s:\n%s",
            self.directory,
            digest,
            self._current.version,
            "\n".join(problems),
        )

    def close(self) -> None:
        self._current.close()


async def watch_rules(holder: RuleBaseHolder, interval: float) -> None:
    """Poll forever (until cancelled); loading runs in a thread, off the event loop."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(holder.reload_if_changed)
        except OSError as exc:  # a file vanished mid-read: try again next time
            log.warning("rules directory could not be read: %s", exc)
