"""A coordinator's browser randomizing one participant, as a separate process that the killed
client scenario can SIGKILL at any point: log in, open the randomize page, read back, submit,
read the result. Prints "ready" once its imports are done, then one JSON line at the end.

    python tests/faults/desk_client.py BASE_URL TRIAL_KEY PARTICIPANT_ID USERNAME PASSWORD
"""

import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.load import Browser  # noqa: E402  (the same stdlib browser as the load benchmark)


def main(base, trial_key, participant_id, username, password):
    parts = urlsplit(base)
    browser = Browser(parts.hostname, parts.port)
    print("ready", flush=True)
    start = time.perf_counter()
    page = browser.get("/login/", "login_page")
    form = browser.form(page, "username", "login_page")
    browser.submit("/login/", "login", form, {"username": username, "password": password})
    path = f"/trials/{trial_key}/desk/randomize/{participant_id}/"
    status, location, page = browser.request("GET", path, "randomize_page")
    if status == 302:  # already randomized: the desk shows the result
        result = urlsplit(location).path
    else:
        assert status == 200, status
        form = browser.form(page, "read_back", "randomize_page")
        result = browser.submit(path, "randomize_post", form, {"read_back": "on"})
    page = browser.get(result, "result_page")
    code = re.search(r'data-testid="code">([^<]+)<', page)
    print(
        json.dumps(
            {
                "result": result,
                "code": code.group(1) if code else None,
                "seconds": time.perf_counter() - start,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:6])
