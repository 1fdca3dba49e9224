"""``tokforge serve``: a local playground page for any tokenizer, offline.

:mod:`.api` answers the page's questions as plain functions (request dict in, response dict
out); :mod:`.server` serves the page and those answers on 127.0.0.1 only; :mod:`.command` is the
command line. The page itself is in ``static/`` (no scripts, fonts or styles from elsewhere).
"""

from .api import Playground as Playground
from .server import make_server as make_server

__all__ = ["Playground", "make_server"]
