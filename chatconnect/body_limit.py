"""Request bodies sent without a length (chunked) are held to the same limit as the others."""

import io


class ChunkedBodyLimit:
    """WSGI middleware. Werkzeug refuses a Content-Length over MAX_CONTENT_LENGTH with 413, but
    reads a chunked body only up to the limit and hands over what it read, silently cut short
    (and accepted, when the first 64 KiB happen to be valid JSON). This reads such a body first,
    at most one byte past the limit, and tells the app its length, so that one over the limit
    gets the same 413 as any other."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        if (not environ.get("CONTENT_LENGTH")
                and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()):
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # Werkzeug ignores a length next to a chunked transfer coding; the body is read now.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)
