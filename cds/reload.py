"""Hot reload: the running service picks up edited rule files without a restart.

A watcher polls the rules directory; only when the files' contents change (a content
hash, so touching a file does nothing) does it validate and load them whole, register
the new ruleset under a new name, swap it in with one assignment, and retire the old
one, which durable-rules frees once no request is still evaluating with it. An invalid
edit keeps the old rules, logs every ``file:line:col`` problem, and is not retried until
the files change again. Rulesets without engine regexes do not leak on reload
(DURABLE_RULES.md), so a reload costs compile time only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from cds.authoring.check import load_checked_rulebase
from cds.errors import CdsError, RulesError
from cds.rulebase import RuleBase, content_hash

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

    def reload_if_changed(self) -> bool:
        """Load the directory again if its contents changed; True when swapped."""
        with self._lock:
            digest = content_hash(self.directory)
            if digest in (self._current.fingerprint, self._rejected):
                return False
            try:
                fresh = load_checked_rulebase(self.directory)  # compiles once
            except RulesError as exc:
                self._reject(digest, [str(p) for p in exc.problems])
                return False
            except (CdsError, OSError) as exc:
                self._reject(digest, [str(exc)])
                return False
            old, self._current = self._current, fresh
            self._rejected = None
        old.close()
        log.info("rules reloaded: %s -> %s", old.version, fresh.version)
        return True

    def _reject(self, digest: str, problems: list[str]) -> None:
        self._rejected = digest
        log.error(
            "rules in %s changed but are invalid; keeping %s:\n%s",
            self.directory,
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
