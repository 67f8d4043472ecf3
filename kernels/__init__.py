"""Triton kernels, shipped inside the wheel as ``amago_fast.kernels``.

Importing this package does not import Triton; each kernel module does, and the public
ops in ``amago_fast.ops`` only reach them for CUDA tensors (or with TRITON_INTERPRET=1).
"""
