"""gunicorn settings for bench/load.py: each request's CPU in its worker, by the bench's step.

The bench names the step of every request in an X-Bench-Step header; after the response is
written, the worker appends "<epoch seconds> <step> <CPU ms>" to the file BENCH_STEP_CPU_LOG
names. The bench keeps the lines of its window and reports the mean per step, which says which
page the server's CPU goes to (the process group's total cannot). One short append per request:
measured beside the total, which includes it.
"""

import os
import time


def pre_request(worker, req):
    worker.bench_cpu_started = time.process_time()


def post_request(worker, req, environ, resp):
    step = environ.get("HTTP_X_BENCH_STEP")
    path = os.environ.get("BENCH_STEP_CPU_LOG")
    started = getattr(worker, "bench_cpu_started", None)
    if not (step and path and started is not None):
        return
    cpu_ms = (time.process_time() - started) * 1000
    with open(path, "a", encoding="ascii") as log:
        log.write(f"{time.time():.3f} {step} {cpu_ms:.3f}\n")
