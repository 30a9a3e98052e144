"""The one error the feedback store raises on purpose."""

from __future__ import annotations

from cds.errors import CdsError

__all__ = ["UnknownCardError"]


class UnknownCardError(CdsError):
    """Feedback names cards this service did not issue; nothing of the call was stored.

    A card issued by another of our services counts as unknown too, and the message does
    not say which case it was: a caller must not learn that a card uuid exists elsewhere.
    """

    def __init__(self, card_uuids: list[str]) -> None:
        super().__init__("feedback for cards this service did not issue: " + ", ".join(card_uuids))
        self.card_uuids = card_uuids
