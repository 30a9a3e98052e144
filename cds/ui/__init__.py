"""The integrator playground (``/playground``) and the rule-author dashboard (``/dashboard``).

Server-side routes plus static pages and one hand-written script shipped in the package:
no CDN, no runtime download, works offline. Off by default on a non-loopback interface
(``ui`` setting / ``serve --ui``); there every data route needs the operator token.
"""

from cds.ui.routes import install_ui, ui_enabled

__all__ = ["install_ui", "ui_enabled"]
