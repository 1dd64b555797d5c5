"""A tiny HTTP file server on 127.0.0.1 for download tests: Range support and dropped connections.

``FileServer(files)`` serves ``{name: bytes}`` at ``server.url + name`` from a background thread.
``drop_next=k`` makes the next k responses announce the full length but send only ``drop_after``
bytes before closing the connection (an interrupted transfer). ``ranges=False`` makes it ignore
``Range`` headers (a server that cannot resume). Every request's path and Range header is recorded.
"""
import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drop_next > 0:
            srv.drop_next -= 1
            self.wfile.write(body[:srv.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class FileServer:
    def __init__(self, files, drop_next=0, drop_after=1000, ranges=True):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = dict(files)
        self.httpd.requests = []
        self.httpd.drop_next, self.httpd.drop_after, self.httpd.ranges = drop_next, drop_after, ranges
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
