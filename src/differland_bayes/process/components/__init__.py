"""Pure JAX kernels shared by the DALEC variants, one concept per module.

Every function here works elementwise on arrays of any (broadcastable) shape, so the same
kernel serves one step inside ``lax.scan`` and a whole time series at once.
"""
