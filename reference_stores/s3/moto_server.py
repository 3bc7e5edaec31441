"""A local moto S3 server for the S3 stores, with request handling serialized.

moto checks ``If-None-Match``/``If-Match`` and then writes without holding a lock, so against a
plain threaded moto server two racing conditional creates can both succeed, which no real S3
allows. ``serialized_moto_server`` wraps moto's WSGI application in one lock, so each request is
handled to completion before the next: conditional writes become atomic as on S3.

Run one for the kit (moto[server] is needed; it is in the ``test`` extra)::

    python -m reference_stores.s3.moto_server --port 5000

moto is imported only when a server is built, so importing this module never needs it.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedApp:
    """WSGI middleware: handle one request at a time, body included."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            self.requests += 1
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if callable(close):
                    close()


def serialized_moto_server(
    port: int = 0, host: str = "127.0.0.1", *, serialize: bool = True, quiet: bool = True
) -> Any:
    """A ``ThreadedMotoServer`` (not started) whose requests are serialized unless told not to.

    ``serialize=False`` gives moto's own behaviour, used by the tests that show the race.
    ``port=0`` picks a free port; read it with ``get_host_and_port()`` after ``start()``.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    class Server(ThreadedMotoServer):
        wsgi_app: Any = None

        def _server_entry(self) -> None:
            # Only S3, served directly: moto's dispatcher, which finds the service from the Host
            # header, costs more than handling the request itself.
            app: Any = create_backend_app("s3")
            self.wsgi_app = SerializedApp(app) if serialize else app
            self._server = make_server(
                self._ip_address,
                self._port,
                self.wsgi_app,
                True,
                request_handler=MotoRequestHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address=host, port=port, verbose=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--unserialized", action="store_true", help="moto's own (racy) request handling"
    )
    args = parser.parse_args(argv)
    server = serialized_moto_server(args.port, args.host, serialize=not args.unserialized)
    server.start()
    host, port = server.get_host_and_port()
    print(f"moto S3 on http://{host}:{port} (serialized: {not args.unserialized})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
