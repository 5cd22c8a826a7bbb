"""Servers on loopback that the campaign tests deliver to: SMTP (aiosmtpd) and a webhook receiver."""

import email
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SmtpServer:
    """aiosmtpd on loopback: keeps every message, refuses the recipients in `refusing`."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.refusing: set[str] = set()
        self.messages: list[tuple[list[str], email.message.Message]] = []
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address in server.refusing:
                    return "550 No such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                with server.lock:
                    server.messages.append(
                        (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
                    )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def delivered_to(self) -> list[str]:
        with self.lock:
            return sorted(to for rcpt_tos, _m in self.messages for to in rcpt_tos)


class Receiver:
    """An HTTP server in a thread that keeps every POST and answers with `status`."""

    def __init__(self):
        self.requests: list = []  # (headers, body)
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/crm-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.requests]
