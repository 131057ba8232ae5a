"""Start the student's Jupyter kernel inside the sandbox (resource limits + Landlock).

:class:`SandboxedKernelManager` prefixes the kernel command with ``kernel_launch.py``, which
reads the connection file (to allow binding exactly the kernel's ZMQ ports), applies the limits
and the Landlock rules, scrubs the environment and then ``exec``s the real kernel. The
kernel can then read only the Python installation and its own working directory (a private
temporary copy of the assignment's data files), write only there, open no TCP connection,
cannot signal processes outside its sandbox (e.g. the grader), and cannot start processes.
"""
from __future__ import annotations

import json
import os
import sys

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type

MEMORY_MB = 3072
CPU_SECONDS = 900
# Largest message part the grader accepts from the kernel. ZMQ drops the connection of a peer that
# sends more (it reconnects at once), so a huge output, metadata or payload never reaches the
# grader's memory; the cell's output budget (ResilientExecute.max_output_bytes) is far smaller.
MAX_MESSAGE_BYTES = 16 << 20


class LimitedKernelClient(AsyncKernelClient):
    """The grader's connection to the student's kernel: every socket refuses oversized messages."""

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)   # default for the sockets it makes
        return context


class SandboxedKernelManager(AsyncKernelManager):
    forbidden: list = []      # set by the Execute preprocessor before the kernel starts
    client_factory = Type(LimitedKernelClient, klass=AsyncKernelClient)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        from . import sandbox
        settings = {"read": sandbox.python_read_roots(), "forbidden": list(self.forbidden),
                    "memory": MEMORY_MB << 20, "cpu": CPU_SECONDS}
        launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_launch.py")
        return [sys.executable, "-I", launcher, json.dumps(settings), "--", *cmd]
