"""Tools for rule authors: check a rules directory, run its examples, explain a request.

Sits above the five request layers (it drives them the way the CLI does) and is never
imported by them.
"""

from cds.authoring.check import check_rules_dir

__all__ = ["check_rules_dir"]
