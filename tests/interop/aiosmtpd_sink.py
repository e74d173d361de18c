"""An SMTP server nobody on this project wrote (aiosmtpd), for the
interoperability tests: it accepts every message on 127.0.0.1 and writes each
one to a file in a folder, with its envelope, so the test can read it.

    python3 aiosmtpd_sink.py PORT DIR [CERT KEY]

With CERT and KEY it offers STARTTLS and requires it before MAIL. It prints
`ready` once it listens and runs until it is killed.
"""

import asyncio
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller


class Folder:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.folder, "%06d.eml" % self.count)
        head = "X-Mail-From: <%s>\r\n" % envelope.mail_from
        head += "".join("X-Rcpt-To: <%s>\r\n" % rcpt for rcpt in envelope.rcpt_tos)
        head += "X-Tls: %s\r\n" % ("yes" if session.ssl else "no")
        with open(name + ".tmp", "wb") as out:
            out.write(head.encode() + envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 queued as %d" % self.count


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    options = {}
    if len(sys.argv) == 5:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        options = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        Folder(folder), hostname="127.0.0.1", port=port, ready_timeout=10, **options
    )
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
