"""What an operator watches: metrics (``metrics``), structured logs and request ids
(``logs``). Every layer may import this package; it imports no other part of ``cds``."""
