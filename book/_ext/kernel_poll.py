"""Sphinx extension: the book build waits for kernel messages in short slices.

The build executes every chapter through nbclient, in this Sphinx process, which waits for each
cell's reply with one asynchronous poll of up to ``execute.timeout`` (600 s, ``_config.yml``).
Now and then pyzmq's asyncio poller misses the wake-up for a message that has already arrived.
The poll then ends only at its timeout, finds the message waiting and goes on, with no error:
on 2026-12-01 Chapter 2 (usually 11-20 s) took 698 s in a CI build, its kernel idle the whole
time and the client idle in its event loop (``py-spy dump`` of both); earlier builds lost 600 s
the same way in Chapter 4. A missed wake-up on a poll without a timeout (nbclient's IOPub
reader) would wait for ever.

This replaces ``AsyncZMQSocketChannel.get_msg`` of jupyter_client with the same poll cut into
slices of :data:`POLL_SLICE_SECONDS`: each new poll looks at the socket again (pyzmq resolves a
poll at once when a message is waiting), so a missed wake-up costs at most one slice. The
overall timeout, the messages and their order are unchanged. Only this build process is
patched; a notebook run in JupyterLab or by nbval (whose blocking client polls with
``zmq_poll`` and does not miss wake-ups) is not affected.
"""

from __future__ import annotations

import math
import time
from queue import Empty

#: Longest single wait for a kernel message; a missed wake-up costs at most this.
POLL_SLICE_SECONDS = 1.0


async def sliced_get_msg(self, timeout=None):
    """``AsyncZMQSocketChannel.get_msg`` waiting in slices: the next message, or ``Empty``
    once ``timeout`` seconds (``None``: no limit) pass without one."""
    assert self.socket is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = POLL_SLICE_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
        # rounded up: a poll of 0 ms under a deadline still ahead would spin until it passes
        if await self.socket.poll(math.ceil(1000 * min(POLL_SLICE_SECONDS, left))):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def patch() -> bool:
    """Install :func:`sliced_get_msg`; returns whether the class was found to patch."""
    try:
        from jupyter_client.channels import AsyncZMQSocketChannel
    except ImportError:  # a jupyter_client without the asyncio channel: nothing to patch
        return False
    AsyncZMQSocketChannel.get_msg = sliced_get_msg
    return True


def setup(app):
    patch()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
