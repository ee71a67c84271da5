"""``xinyi demo``: the whole story on the embedded default, end to end, over real HTTP.

``run`` is the command (instance, server, the steps in order); ``story`` the typed
state the steps share; ``steps`` their order; one module per area tells its part.
Steps import ``story`` only, never the runner.
"""

from __future__ import annotations

from cli.demo.run import demo

__all__ = ["demo"]
