"""An operator's notification endpoint for the compose example: ES2+ HandleDownloadProgressInfo.

The SM-DP+ POSTs one JSON notification per step of a download (SGP.22 §5.3.5) to
<callback url>/gsma/rsp2/es2plus/handleDownloadProgressInfo. This receiver logs each request
(method, path, JSON body) on stdout and answers the way SGP.22 §6.3 asks of the operator:
HTTP 204 No Content with an empty body and an X-Admin-Protocol header. It accepts what real
SM-DP+s send besides the standard form (unknown fields such as tac/imei, `timeStamp`, an ICCID
with an F pad, the same notification twice) and answers 400 only to a body that is not a JSON
object. Requests to other paths get 404, other methods 405; both are logged too.

Standard library only. Environment: RECEIVER_HOST (default 0.0.0.0), RECEIVER_PORT (9000).
"""

import json
import os
import signal
import sys
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOTIFICATION_PATH = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
ADMIN_PROTOCOL = "gsma/rsp/v2.5.0"
MAX_BODY = 1024 * 1024

POINTS = {
    "1": "eligibility and retry limit",
    "2": "confirmation failure",
    "3": "BPP download",
    "4": "BPP installation",
}


def log(line):
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{stamp} {line}", flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "smdpp-compose-receiver"

    def log_message(self, format, *args):  # the default access log: replaced by log() lines
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length)

    def answer(self, status, message=None):
        self.send_response(status)
        self.send_header("X-Admin-Protocol", ADMIN_PROTOCOL)
        if message is None:
            # 204: no body, so no Content-Type either (SGP.22 §6.2).
            if status != 204:
                self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps({"error": message}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        try:
            raw = self.read_body()
        except ValueError as e:
            log(f"POST {self.path} -> 400 ({e})")
            self.close_connection = True
            return self.answer(400, str(e))
        path = self.path.split("?", 1)[0]
        if not path.endswith(NOTIFICATION_PATH):
            log(f"POST {self.path} -> 404 {raw.decode('utf-8', 'replace')}")
            return self.answer(404, f"notifications go to .../{NOTIFICATION_PATH.lstrip('/')}")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            log(f"POST {self.path} -> 400 (invalid JSON: {e}) {raw.decode('utf-8', 'replace')}")
            return self.answer(400, f"the body is not a JSON object: {e}")
        log(f"POST {self.path} -> 204 {json.dumps(body, separators=(',', ':'))}")
        log("  " + summary(body))
        self.answer(204)

    def refuse(self):
        log(f"{self.command} {self.path} -> 405")
        self.close_connection = True  # a body, if any, is left unread
        self.answer(405, "only POST is supported")

    do_GET = do_PUT = do_DELETE = do_PATCH = refuse


def summary(body):
    """One line for people: ICCID, point and status."""
    point = str(body.get("notificationPointId", "?"))
    status = body.get("notificationPointStatus") or {}
    text = f"iccid={body.get('iccid')} eid={body.get('eid')} point={point}"
    text += f" ({POINTS.get(point, 'local event' if point.isdigit() and int(point) >= 100 else 'unknown')})"
    text += f" status={status.get('status')}"
    code = status.get("statusCodeData")
    if code:
        text += f" {code.get('subjectCode')}/{code.get('reasonCode')}"
    call = (body.get("header") or {}).get("functionCallIdentifier")
    return text + f" call={call}"


def main():
    host = os.environ.get("RECEIVER_HOST", "0.0.0.0")
    port = int(os.environ.get("RECEIVER_PORT", "9000"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    # As PID 1 in a container, SIGTERM (docker compose down/stop) must end the process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]  # the port the system chose, when 0 was asked for
    log(f"receiver listening on http://{host}:{port} (POST .../{NOTIFICATION_PATH.lstrip('/')})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log("receiver stopped")


if __name__ == "__main__":
    main()
