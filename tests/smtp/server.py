#!/usr/bin/env python3
"""A real SMTP server on loopback for the email tests (tests/it/server/email.rs).

    python3 tests/smtp/server.py PORT DIR

Runs aiosmtpd (pip install aiosmtpd) on 127.0.0.1:PORT and writes every
message it accepts to DIR as one JSON file: the envelope (mail_from,
rcpt_tos), the headers the tests read, and the text body decoded (so a
test need not undo quoted-printable or base64). A file appears whole (it is
written under a temporary name, then renamed). Prints "ready" once it
listens; stops when its stdin closes (the test that started it ended) or on
SIGTERM.
"""
import email
import email.policy
import json
import os
import sys
import time

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.stderr.write("aiosmtpd is not installed: pip install aiosmtpd\n")
    sys.exit(3)


class Save:
    def __init__(self, directory):
        self.directory = directory
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "body": body.get_content() if body is not None else "",
        }
        name = "%d-%04d" % (time.time_ns(), self.n)
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Save(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    controller.stop()


if __name__ == "__main__":
    main()
