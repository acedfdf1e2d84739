"""Taking a connection over from the server: how a live stream leaves its request thread.

The project's gunicorn worker (deploy/gunicorn_worker.py) puts a callable under TAKE_SOCKET in every
request's WSGI environ. A response that calls it gets the connection's socket, the response's headers
already sent, and whether its body is chunked; from then on the server writes nothing more to that
connection and does not close it, and the response ends (its iterator stops) at once. Under any other
server (falcon.testing, another WSGI server) the key is absent and the response goes on as a plain
iterator.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

TAKE_SOCKET = "dashboard.take_socket"

# Returns (the socket, whether body bytes are sent as HTTP/1.1 chunks), or None when this connection
# cannot be taken over (TLS, HTTP/2): then the response keeps its thread.
TakeSocket = Callable[[], "tuple[socket.socket, bool] | None"]
