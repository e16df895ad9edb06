"""A participant's link is its token, in the address: a log line with the path of a link's page
would let whoever reads the logs open the participant's questionnaires. Django logs every
answer of 400 and above with its path (django.request), a wrong year of birth among them; this
filter, on that logger (settings.LOGGING), writes the token as "<token>". Nothing else of the
line changes."""

import logging
import re

LINK_PATH = re.compile(r"/r/[^/\s?#]+")


class HideLinkTokens(logging.Filter):
    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report, as before
            return True
        hidden = LINK_PATH.sub("/r/<token>", message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True
