"""The submission harness: run untrusted submission code in a sandboxed process.

``run_in_sandbox(submission, entry, images, limits=SandboxLimits(...))`` copies the images and
the submission folder into a private temporary folder, runs the entry point there in a separate
process (no labels, no secrets, no network, a restricted filesystem, time/memory/process limits)
and returns its outputs and an :class:`InferenceReport` that says which protections were active.
Every way a submission can fail becomes a :class:`SandboxFailure` with a ``status`` and a
``reason`` naming the file, the cause and the fix.
"""

from galbench.harness.sandbox import (
    FAILURE_STATUSES,
    InferenceReport,
    SandboxFailure,
    SandboxLimits,
    SandboxSetupError,
    available_protections,
    run_in_sandbox,
)

__all__ = [
    "FAILURE_STATUSES",
    "InferenceReport",
    "SandboxFailure",
    "SandboxLimits",
    "SandboxSetupError",
    "available_protections",
    "run_in_sandbox",
]
