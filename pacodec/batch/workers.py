"""Where the jobs run: in this process, a local pool of warm worker processes, or a Dask cluster;
each yields ``(job, record)`` as files finish."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time

from ..errors import PacodecError
from ..manifest import COORDINATOR_FDS
from .jobs import one_line, run_job, warm

__all__ = ["run_local", "dask_connect", "run_dask", "dask_close"]

_PARENT = None          # in a pool worker: the coordinator's pid
_IN_JOB = False         # in a pool worker: inside run_job, where a SIGTERM must unwind


def _worker_init():
    """Pool worker start: die with the coordinator, clean up on SIGTERM, then warm up."""
    import signal
    global _PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the coordinator decides what Ctrl-C does
    _PARENT = os.getppid()
    for fd in list(COORDINATOR_FDS):                # forked: drop the manifest lock's copies
        with contextlib.suppress(OSError):
            os.close(fd)
    COORDINATOR_FDS.clear()

    def _term(signum, frame):
        if not _IN_JOB:
            # between jobs (waiting for work, or sending a result back, where the pool's
            # worker loop would swallow an exception and wait forever for a dead coordinator)
            os._exit(128 + signum)
        raise SystemExit(128 + signum)               # unwinds atomic_output: partial removed
    signal.signal(signal.SIGTERM, _term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    warm()


def _pool_job(job):
    """``run_job`` in a pool worker: a SIGTERM (the coordinator stopping, or dying) ends the
    process once ``atomic_output`` has removed the partial file, instead of taking more work."""
    global _IN_JOB
    if _PARENT is not None and os.getppid() != _PARENT:
        os._exit(1)                                  # orphaned: the coordinator is gone
    try:
        _IN_JOB = True
        return run_job(job)
    except SystemExit as e:
        os._exit(e.code if isinstance(e.code, int) else 1)
    finally:
        _IN_JOB = False


def run_local(jobs, n):
    """Yield (job, record) as files finish, on ``n`` spawned worker processes (in-process for 1)."""
    if not jobs:
        return
    if n <= 1:
        warm()
        for job in jobs:
            yield job, run_job(job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    # Linux: fork from this process once its kernels are loaded, so workers start warm; other
    # systems spawn, and each worker warms itself in _worker_init
    fork = sys.platform.startswith("linux")
    if fork:
        warm()
    ex = ProcessPoolExecutor(n, mp_context=mp.get_context("fork" if fork else "spawn"),
                             initializer=_worker_init)
    futs = {}
    ok = False
    try:
        for job in jobs:                       # already largest-first: the pool keeps that order
            futs[ex.submit(_pool_job, job)] = job
        for fut in as_completed(futs):
            job = futs[fut]
            try:
                rec = fut.result()
            except BrokenProcessPool:
                rec = {"type": "error", "input": job["input"], "output": job["output"],
                       "error": "a worker process died (out of memory or killed?)"}
            yield job, rec
        ok = True
    finally:
        if not ok:                             # interrupted: stop the workers, which clean up
            for f in futs:
                f.cancel()
            for p in list(getattr(ex, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    p.terminate()
        ex.shutdown(wait=True, cancel_futures=True)


def dask_connect(address):
    """(client, cluster or None) for ``tcp://HOST:PORT`` or ``local:N``; one-line errors."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PacodecError('--dask needs dask.distributed: pip install "pacodec[dask]"') from None
    import logging
    if address.startswith("local:") or address == "local":
        try:
            n = int(address.partition(":")[2] or os.cpu_count() or 1)
            if n < 1:
                raise ValueError
        except ValueError:
            raise PacodecError(f"--dask local:N needs a positive number of workers, got "
                               f"{address!r}") from None
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        timeout = dask.config.get("distributed.comm.timeouts.connect")
        return Client(address, timeout=timeout), None
    except Exception as e:              # OSError, TimeoutError, ValueError (bad address)...
        raise PacodecError(f"cannot reach the Dask scheduler at {address}: {one_line(e)}") from None


def run_dask(jobs, conn, log=None):
    from dask.distributed import as_completed
    client, cluster = conn
    futs = {}
    try:
        if log:
            log(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at "
                f"{client.scheduler.address}")
        client.run(warm)
        token = hashlib.sha1(f"{os.getpid()}-{time.time()}".encode()).hexdigest()[:10]
        for i, job in enumerate(jobs):
            fut = client.submit(run_job, job, key=f"pacodec-batch-{token}-{i}", pure=False,
                                priority=len(jobs) - i)      # higher runs first: largest first
            futs[fut] = job
        for fut in as_completed(list(futs)):
            job = futs[fut]
            try:
                rec = fut.result()
            except Exception as e:                 # the worker died or the task was lost
                rec = {"type": "error", "input": job["input"], "output": job["output"],
                       "error": f"dask task failed: {one_line(e)}"}
            yield job, rec
    finally:
        with contextlib.suppress(Exception):
            client.cancel(list(futs))
        dask_close(conn)


def dask_close(conn):
    client, cluster = conn
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()
