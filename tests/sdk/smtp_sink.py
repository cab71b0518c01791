"""A real SMTP server for tests/mail.rs (aiosmtpd): every accepted message is appended to a
JSON-lines file, decoded (headers, body) beside its envelope and the AUTH login used.

    python smtp_sink.py --port PORT --out FILE [--refuse ADDR]... [--defer ADDR]...
                        [--delay-ms MS] [--user U --password P]

--refuse answers RCPT for ADDR with 550 (permanent), --defer with 451 (transient);
--delay-ms holds each message that long before accepting it (a slow server). With
--user/--password the server offers AUTH (over plain TCP: it is a loopback test) and requires
it. Runs until killed.
"""

import argparse
import asyncio
import json
import signal
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out, refuse, defer, delay):
        self.out = out
        self.delay = delay
        self.refuse = set(refuse)
        self.defer = set(defer)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address in self.defer:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_content(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "250 2.0.0 accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--refuse", action="append", default=[])
    p.add_argument("--defer", action="append", default=[])
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    # AUTH without TLS is what this loopback test wants
    warnings.filterwarnings("ignore", category=UserWarning)

    kwargs = {}
    if a.user is not None:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == a.user
                and auth_data.password.decode() == a.password
            )
            return AuthResult(success=ok, auth_data=auth_data if ok else None)

        kwargs = dict(authenticator=authenticator, auth_require_tls=False, auth_required=True)

    controller = Controller(Sink(a.out, a.refuse, a.defer, a.delay_ms / 1000), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
