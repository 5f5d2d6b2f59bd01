"""focalspec's own focal-loss implementations: the code users import or copy.

``focalspec.kernels.torch_loss``, ``.jax`` and ``.tf`` are the stable framework implementations
(every variant of SPEC.md, closed-form gradients); the adapters in ``focalspec.adapters``
only wrap them for the conformance suite.  ``focalspec.kernels.triton_kernel`` (PyTorch) and
``.pallas`` (JAX) are fused one-pass GPU kernels for sigmoid focal loss on logits (loss and
gradient in one read of the inputs); on CPU they run under the Triton / Pallas interpreter.
Each module imports its framework on import, so import the one you need:
``from focalspec.kernels.torch_loss import sigmoid_focal_loss``.
"""
